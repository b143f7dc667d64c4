#if canImport(Glibc)
import Glibc
#endif
import CLibPQ

/// One non-blocking libpq connection driven by an `EventLoop`.
///
/// State machine: `connecting` → `idle` ⇄ `busy` → `failed` / `closed`. It runs one operation at a
/// time (a single statement or a batch); `PGPool` does the queueing. Once connected the connection
/// stays in libpq pipeline mode, so a single statement and a batch take the same path: send every
/// statement, one `PQpipelineSync`, read results until `PGRES_PIPELINE_SYNC`. A first use of a
/// prepared statement sends `PQsendPrepare` in the same round trip.
///
/// A broken connection fails its in-flight operation with a `PGError`, reports itself through
/// `onStateChange`, and is never reused: the pool makes a new one.
public final class PGConnection: IOHandler {
    /// Where the connection is in its life.
    public enum State: Equatable, Sendable, CustomStringConvertible {
        case connecting, idle, busy
        case failed(PGError)
        case closed

        public var description: String {
            switch self {
            case .connecting: return "connecting"
            case .idle: return "idle"
            case .busy: return "busy"
            case .failed(let e): return "failed(\(e))"
            case .closed: return "closed"
            }
        }
    }

    /// What the reader expects next in the result stream of the current operation.
    private enum Step {
        /// The result of `PQsendPrepare` for `name`, needed by query `query`.
        case prepare(name: String, query: Int)
        /// The result of query `index` of the operation.
        case query(Int)
    }

    private final class Operation {
        let count: Int
        var steps: [Step] = []
        var stepIndex = 0
        var results: [Result<PGResult, PGError>?]
        let completion: ([Result<PGResult, PGError>]) -> Void
        init(count: Int, completion: @escaping ([Result<PGResult, PGError>]) -> Void) {
            self.count = count
            self.results = Array(repeating: nil, count: count)
            self.completion = completion
        }
    }

    public let configuration: PGConfiguration
    public private(set) var state: State = .connecting {
        didSet { if oldValue != state && !holdingStateReport { onStateChange?(state) } }
    }
    /// Set while a finished operation's completion runs: the `.idle` it ended in is reported
    /// only after that completion (see `finishOperation`).
    private var holdingStateReport = false
    /// Told about every state change (connected → `.idle`, finished work → `.idle`, death → `.failed`).
    public var onStateChange: ((State) -> Void)?
    /// `NOTIFY`s received on channels this connection `LISTEN`s to: (channel, payload). Unset,
    /// they are dropped as they arrive.
    public var onNotification: ((String, String) -> Void)?
    /// Server process id (`PQbackendPID`), for logs and tests.
    public private(set) var backendPID: Int32 = 0

    private unowned let loop: EventLoop
    private var conn: OpaquePointer?
    private var token: RegistrationToken?
    private var op: Operation?
    private var prepared = Set<String>()
    private var connectTimer: TimerID?
    private var queryTimer: TimerID?

    /// Creates the connection object; call `connect()` after setting `onStateChange`.
    public init(loop: EventLoop, configuration: PGConfiguration) {
        self.loop = loop
        self.configuration = configuration
    }

    /// Starts connecting (non-blocking). The outcome arrives as `.idle` or `.failed` via `onStateChange`.
    public func connect() {
        guard state == .connecting, conn == nil else { return }
        startConnect()
    }

    deinit {
        // The owner should close(); this only makes sure the socket and handle are not leaked.
        if let t = token { loop.deregister(t) }
        if let c = conn { PQfinish(c) }
    }

    /// True while the connection can take work or is doing some.
    public var isConnected: Bool { state == .idle || state == .busy }

    /// A one-line dump for watchdogs and logs.
    public var debugDescription: String {
        "PGConnection(state: \(state), pid: \(backendPID), fd: \(token.map { String($0.fd) } ?? "-"), "
            + "interest: \(token.flatMap { loop.interest(of: $0) }.map { String($0.rawValue) } ?? "-"), "
            + "op: \(op.map { "\($0.stepIndex)/\($0.steps.count) steps" } ?? "none"))"
    }

    // MARK: Connecting

    private func startConnect() {
        var keys = ["dbname", "application_name", "client_encoding"]
        var values = [configuration.conninfo, configuration.applicationName, "UTF8"]
        if configuration.statementTimeoutMillis > 0 {
            // Keywords after dbname override what the expanded URL/conninfo set (expand_dbname = 1).
            keys.append("options")
            values.append("-c statement_timeout=\(configuration.statementTimeoutMillis)")
        }
        let c = withCStrings(keys) { k in withCStrings(values) { v in PQconnectStartParams(k, v, 1) } }
        guard let c else {
            state = .failed(.connectFailed("out of memory"))
            return
        }
        conn = c
        // libpq prints server NOTICEs/WARNINGs to stderr by default; the loop logs through its own channel.
        _ = PQsetNoticeReceiver(c, { _, _ in }, nil)
        if PQstatus(c) == CONNECTION_BAD {
            fail(.connectFailed(lastError()))
            return
        }
        if configuration.connectTimeoutMillis > 0 {
            connectTimer = loop.schedule(afterMillis: Int64(configuration.connectTimeoutMillis)) { [weak self] in
                guard let self else { return }
                self.connectTimer = nil
                if self.state == .connecting {
                    self.fail(.connectFailed("timed out after \(self.configuration.connectTimeoutMillis) ms"))
                }
            }
        }
        // docs/reactor-notes.md D2: right after PQconnectStart, behave as if PQconnectPoll had said PGRES_POLLING_WRITING.
        watch(.writable)
    }

    private func connectStep() {
        guard let c = conn else { return }
        switch PQconnectPoll(c) {
        case PGRES_POLLING_OK:
            connected()
        case PGRES_POLLING_READING:
            watch(.readable)
        case PGRES_POLLING_WRITING:
            watch(.writable)
        case PGRES_POLLING_FAILED:
            fail(.connectFailed(lastError()))
        default:
            watch([.readable, .writable])
        }
    }

    private func connected() {
        guard let c = conn else { return }
        if let t = connectTimer { loop.cancel(t); connectTimer = nil }
        // docs/reactor-notes.md D3: without non-blocking mode PQsendQuery* may block on a full socket buffer.
        guard PQsetnonblocking(c, 1) == 0 else { fail(.connectFailed("PQsetnonblocking: \(lastError())")); return }
        // docs/reactor-notes.md D6: pipeline mode, entered while idle; the docs want non-blocking mode to avoid a send/recv deadlock.
        guard PQenterPipelineMode(c) == 1 else { fail(.connectFailed("PQenterPipelineMode: \(lastError())")); return }
        backendPID = PQbackendPID(c)
        watch(.readable)  // idle connections still read, so a server that goes away is noticed at once
        guard conn != nil else { return }
        state = .idle
    }

    /// (Re)registers libpq's current socket with `interest`.
    private func watch(_ interest: Interest) {
        guard let c = conn else { return }
        let fd = PQsocket(c)
        guard fd >= 0 else { fail(.connectFailed("no socket: \(lastError())")); return }
        if state == .connecting {
            // docs/reactor-notes.md D2: libpq may close and reopen its socket between PQconnectPoll steps, even under the same
            // number, and the old epoll registration died with the old file. DEL + ADD on every step is
            // a couple of syscalls per connect and never misses the new socket.
            if let t = token { loop.deregister(t); token = nil }
        }
        if let t = token, t.fd == fd {
            do { try loop.modify(t, interest: interest) } catch { fail(.connectionLost("\(error)")) }
            return
        }
        if let t = token { loop.deregister(t); token = nil }
        do { token = try loop.register(fd: fd, interest: interest, handler: self) } catch {
            fail(state == .connecting ? .connectFailed("\(error)") : .connectionLost("\(error)"))
        }
    }

    // MARK: Sending

    /// Runs one statement. `completion` is called exactly once, on the loop.
    public func execute(_ query: PGQuery, completion: @escaping (Result<PGResult, PGError>) -> Void) {
        execute(batch: [query]) { results in completion(results.first ?? .failure(.client("no result"))) }
    }

    /// Runs a batch in one round trip: all statements are sent, then one Sync. The batch is one implicit
    /// transaction (docs/reactor-notes.md D6): when a statement fails, the later ones report `.aborted` and everything since
    /// the Sync is rolled back. `completion` gets one result per statement, in order, exactly once.
    public func execute(batch: [PGQuery], completion: @escaping ([Result<PGResult, PGError>]) -> Void) {
        guard !batch.isEmpty else { completion([]); return }
        guard state == .idle, let c = conn, op == nil else {
            let e: PGError
            switch state {
            case .failed(let f): e = f
            case .closed: e = .closed
            default: e = .client("connection is \(state), not idle")
            }
            completion(Array(repeating: .failure(e), count: batch.count))
            return
        }
        let operation = Operation(count: batch.count, completion: completion)
        var preparing = Set<String>()
        for (i, q) in batch.enumerated() {
            let ok: Bool
            if let name = q.preparedName {
                if !prepared.contains(name) && !preparing.contains(name) {
                    preparing.insert(name)
                    guard PQsendPrepare(c, name, q.sql, Int32(q.params.count), nil) == 1 else {
                        op = operation
                        fail(.client("PQsendPrepare: \(lastError())"))
                        return
                    }
                    operation.steps.append(.prepare(name: name, query: i))
                }
                ok = withParams(q.params) { n, p in PQsendQueryPrepared(c, name, n, p, nil, nil, 0) } == 1
            } else {
                ok = withParams(q.params) { n, p in PQsendQueryParams(c, q.sql, n, nil, p, nil, nil, 0) } == 1
            }
            guard ok else {
                op = operation
                fail(.client("send: \(lastError())"))
                return
            }
            operation.steps.append(.query(i))
        }
        guard PQpipelineSync(c) == 1 else {
            op = operation
            fail(.client("PQpipelineSync: \(lastError())"))
            return
        }
        op = operation
        state = .busy
        if configuration.queryTimeoutMillis > 0 {
            let ms = configuration.queryTimeoutMillis
            queryTimer = loop.schedule(afterMillis: Int64(ms)) { [weak self] in
                guard let self else { return }
                self.queryTimer = nil
                if self.op != nil { self.fail(.timeout(milliseconds: ms)) }
            }
        }
        flush()
    }

    /// docs/reactor-notes.md D4: PQflush returns 0 (all sent), 1 (more to send: watch read AND write, and keep consuming input,
    /// since the server may be blocked sending to us) or -1 (error).
    private func flush() {
        guard let c = conn else { return }
        switch PQflush(c) {
        case 0: watch(.readable)
        case 1: watch([.readable, .writable])
        default: fail(.connectionLost(lastError()))
        }
    }

    // MARK: Receiving

    public func handleIO(_ events: IOEvents) {
        switch state {
        case .connecting:
            connectStep()
        case .idle, .busy:
            guard let c = conn else { return }
            if events.contains(.writable) {
                flush()
                guard conn != nil else { return }
            }
            if !events.isDisjoint(with: [.readable, .hangup, .error, .readHangup]) {
                // docs/reactor-notes.md D4/D7: always consume on readable, even while flushing; 0 means the socket is broken.
                guard PQconsumeInput(c) == 1 else { fail(.connectionLost(lastError())); return }
                while let live = conn, let n = PQnotifies(live) {
                    // Copied out and freed at once, so they never pile up inside libpq.
                    let channel = n.pointee.relname.map { String(cString: $0) } ?? ""
                    let payload = n.pointee.extra.map { String(cString: $0) } ?? ""
                    PQfreemem(n)
                    onNotification?(channel, payload)
                }
                drainResults()
                guard let c2 = conn else { return }
                if PQstatus(c2) == CONNECTION_BAD { fail(.connectionLost(lastError())) }
            }
        case .failed, .closed:
            break
        }
    }

    /// Reads every result that is ready. docs/reactor-notes.md D5: PQgetResult only when PQisBusy is 0, or it would block.
    /// docs/reactor-notes.md D6: in pipeline mode a NULL ends one statement's results, PGRES_PIPELINE_SYNC ends the batch.
    private func drainResults() {
        var nullsInARow = 0
        while let c = conn, let operation = op, PQisBusy(c) == 0 {
            guard let res = PQgetResult(c) else {
                nullsInARow += 1
                if nullsInARow > 1 { break }  // nothing more queued; wait for the socket
                if operation.stepIndex < operation.steps.count { operation.stepIndex += 1 }
                continue
            }
            nullsInARow = 0
            let status = PQresultStatus(res)
            if status == PGRES_PIPELINE_SYNC {
                PQclear(res)
                finishOperation()
                continue
            }
            if operation.stepIndex < operation.steps.count {
                record(res, status: status, step: operation.steps[operation.stepIndex], in: operation)
            }
            PQclear(res)
        }
    }

    private func record(_ res: OpaquePointer, status: ExecStatusType, step: Step, in operation: Operation) {
        let value: Result<PGResult, PGError>
        switch status {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            value = .success(convert(res, status: status))
        case PGRES_PIPELINE_ABORTED:
            value = .failure(.aborted)
        default:
            value = .failure(serverError(res))
        }
        switch step {
        case .prepare(let name, let query):
            if case .success = value { prepared.insert(name) }
            // A failed prepare is the query's answer (the query itself then reports ABORTED).
            else if operation.results[query] == nil { operation.results[query] = value }
        case .query(let i):
            // Keep the first answer: a statement produces one result; a failed prepare already spoke.
            if operation.results[i] == nil { operation.results[i] = value }
        }
    }

    private func finishOperation() {
        guard let operation = op else { return }
        op = nil
        if let t = queryTimer { loop.cancel(t); queryTimer = nil }
        let results = operation.results.map { $0 ?? .failure(.client("no result received")) }
        // The finished batch's completion runs first, and only then does the connection report
        // itself idle (the pool then hands it the next waiter): a completion never sees the next
        // batch already started on its connection, and what it queues is ordered after it.
        // The state is already `.idle`, so the completion may itself run the next statement here.
        holdingStateReport = true
        state = .idle
        holdingStateReport = false
        operation.completion(results)
        if state == .idle { onStateChange?(.idle) }
    }

    private func convert(_ res: OpaquePointer, status: ExecStatusType) -> PGResult {
        let nrows = Int(PQntuples(res))
        let ncols = Int(PQnfields(res))
        var columns: [String] = []
        columns.reserveCapacity(ncols)
        for j in 0..<ncols { columns.append(PQfname(res, Int32(j)).map { String(cString: $0) } ?? "?column?") }
        var rows: [[String?]] = []
        rows.reserveCapacity(nrows)
        for i in 0..<nrows {
            var row: [String?] = []
            row.reserveCapacity(ncols)
            for j in 0..<ncols {
                if PQgetisnull(res, Int32(i), Int32(j)) == 1 {
                    row.append(nil)
                } else {
                    row.append(PQgetvalue(res, Int32(i), Int32(j)).map { String(cString: $0) } ?? "")
                }
            }
            rows.append(row)
        }
        var affected = nrows
        if let t = PQcmdTuples(res), t.pointee != 0, let n = Int(String(cString: t)) { affected = n }
        return PGResult(columns: columns, rows: rows, affectedRows: affected)
    }

    private func serverError(_ res: OpaquePointer) -> PGError {
        // PG_DIAG_SQLSTATE is 'C' and PG_DIAG_MESSAGE_PRIMARY is 'M' (character macros).
        let state = PQresultErrorField(res, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        let message = PQresultErrorField(res, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
            ?? PQresultErrorMessage(res).map { trimmed(String(cString: $0)) } ?? "unknown error"
        return .server(sqlState: state ?? "XX000", message: message)
    }

    // MARK: Failure and closing

    /// Fails the in-flight operation with `error`, releases the socket and the libpq handle,
    /// and reports `.failed`. Safe to call more than once.
    private func fail(_ error: PGError) {
        end(in: .failed(error), failingWith: error)
    }

    /// Closes the connection; an in-flight operation fails with `.closed`.
    public func close() {
        end(in: .closed, failingWith: .closed)
    }

    /// The one way a connection ends: release everything, settle on `final`, and fail the
    /// operation in flight with `error`. A connection already failed or closed stays as it is.
    private func end(in final: State, failingWith error: PGError) {
        switch state {
        case .failed, .closed: return
        default: break
        }
        release()
        let operation = op
        op = nil
        state = final
        if let operation {
            operation.completion(Array(repeating: .failure(error), count: operation.count))
        }
    }

    private func release() {
        if let t = connectTimer { loop.cancel(t); connectTimer = nil }
        if let t = queryTimer { loop.cancel(t); queryTimer = nil }
        // E1: DEL before close.
        if let t = token { loop.deregister(t); token = nil }
        if let c = conn { PQfinish(c); conn = nil }
    }

    private func lastError() -> String {
        guard let c = conn, let m = PQerrorMessage(c) else { return "unknown libpq error" }
        let s = trimmed(String(cString: m))
        return s.isEmpty ? "connection closed" : s
    }
}

/// libpq messages end in a newline and may span lines; errors are reported as one line.
func trimmed(_ s: String) -> String {
    let parts = s.split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\t" })
    return parts.map { p -> Substring in
        var t = p
        while let f = t.first, f == " " { t.removeFirst() }
        while let l = t.last, l == " " { t.removeLast() }
        return t
    }.filter { !$0.isEmpty }.joined(separator: " ")
}

/// A8: libpq takes `const char * const *`; each value is strdup'd, passed, then freed.
/// libpq copies them into its send buffer inside the PQsend* call, so freeing afterwards is safe.
private func withParams<R>(_ params: [String?], _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    if params.isEmpty { return body(0, nil) }
    let owned: [UnsafeMutablePointer<CChar>?] = params.map { $0.flatMap { strdup($0) } }
    defer { for p in owned { free(p) } }
    let ptrs: [UnsafePointer<CChar>?] = owned.map { $0.map { UnsafePointer($0) } }
    return ptrs.withUnsafeBufferPointer { body(Int32(params.count), $0.baseAddress) }
}

/// A NULL-terminated C string array for libpq's keyword/value arrays.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let owned: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { for p in owned { free(p) } }
    let ptrs: [UnsafePointer<CChar>?] = owned.map { $0.map { UnsafePointer($0) } }
    return ptrs.withUnsafeBufferPointer { body($0.baseAddress!) }
}
