/// A fixed set of `PGConnection`s on one loop (shared-nothing: one pool per worker).
///
/// Work goes to an idle connection, or waits in a bounded FIFO; when the FIFO is full the caller gets
/// `.overloaded` at once. Dead connections are replaced with exponential backoff (100 ms doubling to
/// 5 s) while the others keep serving. When no connection is up at all, new work fails at once with
/// `.unavailable` instead of queueing behind a database that is down (the API answers 503).
/// All methods must be called on the loop thread; every completion runs there, exactly once.
public final class PGPool {
    /// Counters for health checks, logs and watchdog dumps.
    public struct Stats: Sendable, Equatable, CustomStringConvertible {
        public var size: Int
        public var connected: Int
        public var idle: Int
        public var busy: Int
        public var queued: Int
        public var description: String {
            "size=\(size) connected=\(connected) idle=\(idle) busy=\(busy) queued=\(queued)"
        }
    }

    private final class Slot {
        let index: Int
        var connection: PGConnection?
        var backoffMillis: Int64
        var reconnectTimer: TimerID?
        var everConnected = false
        init(index: Int, backoffMillis: Int64) {
            self.index = index
            self.backoffMillis = backoffMillis
        }
    }

    private struct Waiter {
        let batch: [PGQuery]
        let completion: ([Result<PGResult, PGError>]) -> Void
        let queuedAt: UInt64
    }

    public let configuration: PGConfiguration
    public let size: Int
    public let maxQueue: Int
    /// First reconnect delay; doubles per failure up to `maxBackoffMillis`, reset on success.
    public var minBackoffMillis: Int64 = 100
    public var maxBackoffMillis: Int64 = 5_000
    /// The most recent connection error, for health output and `.unavailable` messages.
    public private(set) var lastError: PGError?
    /// Connections that failed or dropped so far. A write that skipped its WAL flush can only have
    /// been lost by the database if this moved since (a server crash ends every session).
    public private(set) var connectionLosses = 0
    /// Called when `isHealthy` changes (logs, metrics).
    public var onHealthChange: ((Bool) -> Void)?
    /// Called with the nanoseconds each batch waited for a connection (0 when one was idle), for metrics.
    public var onWaitForConnection: ((UInt64) -> Void)?

    private unowned let loop: EventLoop
    private var slots: [Slot] = []
    private var waiters: [Waiter] = []
    private var waitersHead = 0
    /// Queued group-commit batches (`pipeline(_:groupCommit:)`): a free connection takes them all
    /// (up to `maxGroup`) as one transaction, so one commit covers many writes.
    private var groupWaiters: [Waiter] = []
    /// A free connection serves the FIFO and the group in turns, so neither starves the other.
    private var groupTurn = false
    /// Most batches one group transaction carries.
    public var maxGroup = 16
    private var started = false
    private var closed = false
    /// True until every slot has finished its first connect attempt; work queues meanwhile.
    private var warmingUp = true
    private var wasHealthy = false

    public init(loop: EventLoop, configuration: PGConfiguration, size: Int = 4, maxQueue: Int = 1024) {
        self.loop = loop
        self.configuration = configuration
        self.size = max(1, size)
        self.maxQueue = max(0, maxQueue)
    }

    deinit {
        for s in slots {
            if let t = s.reconnectTimer { loop.cancel(t) }
            s.connection?.onStateChange = nil
            s.connection?.close()
        }
    }

    /// Starts connecting every slot (non-blocking).
    public func start() {
        guard !started, !closed else { return }
        started = true
        slots = (0..<size).map { Slot(index: $0, backoffMillis: minBackoffMillis) }
        for s in slots { connect(s) }
    }

    /// At least one connection is up.
    public var isHealthy: Bool { slots.contains { $0.connection?.isConnected == true } }

    public var stats: Stats {
        var st = Stats(size: size, connected: 0, idle: 0, busy: 0, queued: waiters.count - waitersHead + groupWaiters.count)
        for s in slots {
            guard let c = s.connection else { continue }
            if c.isConnected { st.connected += 1 }
            if c.state == .idle { st.idle += 1 }
            if c.state == .busy { st.busy += 1 }
        }
        return st
    }

    /// A one-line-per-connection dump for watchdogs.
    public var debugDescription: String {
        "PGPool(\(stats), closed=\(closed), warmingUp=\(warmingUp), lastError=\(lastError.map { "\($0)" } ?? "-"))\n"
            + slots.map { "  [\($0.index)] backoff=\($0.backoffMillis)ms timer=\($0.reconnectTimer != nil) "
                + ($0.connection?.debugDescription ?? "no connection") }.joined(separator: "\n")
    }

    // MARK: Work

    /// Runs one statement on some connection. With `prepared`, it is a named prepared statement
    /// (prepared once per connection, in the same round trip as its first use).
    public func query(_ sql: String, _ params: [String?] = [], prepared name: String? = nil,
                      completion: @escaping (Result<PGResult, PGError>) -> Void) {
        submit([PGQuery(sql, params, prepared: name)]) { results in
            completion(results.first ?? .failure(.client("no result")))
        }
    }

    /// Runs a batch in one round trip on one connection, as one implicit transaction (see
    /// `PGConnection.execute(batch:completion:)`). One result per statement, in order.
    ///
    /// With `groupCommit`, a batch that has to wait for a connection may share its transaction
    /// with the other group-commit batches waiting (group commit): use it for independent writes,
    /// where one transaction's fixed cost (commit, wake-ups) outweighs the statements. Every such
    /// batch may share a transaction with any other, so they must agree on its settings (ChatStore
    /// sends only turn starts, which all turn the WAL flush off). When the shared transaction
    /// fails, the batch whose statement failed gets its results and the others run again on
    /// their own, so no batch sees another's failure.
    public func pipeline(_ queries: [PGQuery], groupCommit: Bool = false,
                         completion: @escaping ([Result<PGResult, PGError>]) -> Void) {
        guard !queries.isEmpty else { completion([]); return }
        submit(queries, groupCommit: groupCommit, completion: completion)
    }

    private func submit(_ batch: [PGQuery], groupCommit: Bool = false,
                        completion: @escaping ([Result<PGResult, PGError>]) -> Void) {
        func failAll(_ e: PGError) { completion(Array(repeating: .failure(e), count: batch.count)) }
        if closed { failAll(.closed); return }
        if !started { start() }
        // Only with nothing queued: a connection is idle-but-unreported while a finished batch's
        // completion runs, and work submitted from there must not overtake the waiters.
        let nothingQueued = waitersHead >= waiters.count && groupWaiters.isEmpty
        if nothingQueued, let s = slots.first(where: { $0.connection?.state == .idle }), let c = s.connection {
            onWaitForConnection?(0)
            c.execute(batch: batch, completion: completion)
            return
        }
        if !warmingUp && !isHealthy {
            failAll(.unavailable(lastError.map { "\($0)" } ?? "no connection"))
            return
        }
        if waiters.count - waitersHead + groupWaiters.count >= maxQueue { failAll(.overloaded); return }
        let w = Waiter(batch: batch, completion: completion, queuedAt: monotonicNanos())
        if groupCommit { groupWaiters.append(w) } else { waiters.append(w) }
    }

    /// Gives a free connection the next work: the FIFO's head or the waiting group, in turns.
    private func dispatch(to c: PGConnection) {
        let fifoWaiting = waitersHead < waiters.count
        if !groupWaiters.isEmpty && (groupTurn || !fifoWaiting) {
            groupTurn = false
            let take = min(groupWaiters.count, max(1, maxGroup))
            let group = Array(groupWaiters.prefix(take))
            groupWaiters.removeFirst(take)
            let now = monotonicNanos()
            for w in group { onWaitForConnection?(now &- w.queuedAt) }
            executeGroup(group, on: c)
        } else if let w = popWaiter() {
            groupTurn = true
            onWaitForConnection?(monotonicNanos() &- w.queuedAt)
            c.execute(batch: w.batch, completion: w.completion)
        }
    }

    /// One transaction for several batches; each gets its own slice of the results.
    private func executeGroup(_ group: [Waiter], on c: PGConnection) {
        guard group.count > 1 else {
            if let w = group.first { c.execute(batch: w.batch, completion: w.completion) }
            return
        }
        c.execute(batch: group.flatMap(\.batch)) { [weak self] results in
            var offset = 0
            let failed = results.contains { if case .failure = $0 { return true } else { return false } }
            let connectionLevel = results.contains {
                if case .failure(let e) = $0, e.sqlState == nil, e != .aborted { return true } else { return false }
            }
            for w in group {
                let n = w.batch.count
                let slice = offset + n <= results.count
                    ? Array(results[offset..<(offset + n)])
                    : Array(repeating: .failure(.client("short group result")), count: n)
                offset += n
                guard failed else { w.completion(slice); continue }
                // The shared transaction rolled back. Lost connections and the like are every
                // batch's failure; a statement error is only its own batch's, the rest run again.
                let own = slice.contains {
                    if case .failure(let e) = $0, e != .aborted { return true } else { return false }
                }
                if own || connectionLevel || self == nil {
                    w.completion(slice)
                } else {
                    self?.submit(w.batch, completion: w.completion)
                }
            }
        }
    }

    private func popWaiter() -> Waiter? {
        guard waitersHead < waiters.count else { return nil }
        let w = waiters[waitersHead]
        waitersHead += 1
        // Compact now and then so the FIFO does not grow without bound.
        if waitersHead > 64 && waitersHead * 2 > waiters.count {
            waiters.removeFirst(waitersHead)
            waitersHead = 0
        }
        return w
    }

    private func failWaiters(_ e: PGError) {
        while let w = popWaiter() { w.completion(Array(repeating: .failure(e), count: w.batch.count)) }
        waiters.removeAll()
        waitersHead = 0
        let group = groupWaiters
        groupWaiters.removeAll()
        for w in group { w.completion(Array(repeating: .failure(e), count: w.batch.count)) }
    }

    // MARK: Connections

    private func connect(_ slot: Slot) {
        slot.reconnectTimer = nil
        guard !closed else { return }
        let c = PGConnection(loop: loop, configuration: configuration)
        slot.connection = c
        c.onStateChange = { [weak self, unowned slot] state in self?.stateChanged(slot, state) }
        c.connect()
    }

    private func stateChanged(_ slot: Slot, _ state: PGConnection.State) {
        guard !closed else { return }
        switch state {
        case .idle:
            slot.backoffMillis = minBackoffMillis
            slot.everConnected = true
            warmingUpDone()
            if let c = slot.connection { dispatch(to: c) }
        case .failed(let e):
            lastError = e
            connectionLosses += 1
            let delay = slot.backoffMillis
            slot.backoffMillis = min(slot.backoffMillis * 2, maxBackoffMillis)
            slot.reconnectTimer = loop.schedule(afterMillis: delay) { [weak self, unowned slot] in
                self?.connect(slot)
            }
            if warmingUp && slots.allSatisfy({ $0.everConnected || $0.connection?.state != .connecting }) {
                warmingUp = false
            }
            if !warmingUp && !isHealthy {
                // Nothing can serve the queue now; waiting for the backoff would look like a hang.
                failWaiters(.unavailable("\(e)"))
            }
        case .busy, .connecting, .closed:
            break
        }
        let healthy = isHealthy
        if healthy != wasHealthy {
            wasHealthy = healthy
            onHealthChange?(healthy)
        }
    }

    private func warmingUpDone() { warmingUp = false }

    /// Closes every connection (in-flight work fails with `.closed`), cancels reconnect timers and
    /// fails queued work. The pool cannot be restarted.
    public func close() {
        guard !closed else { return }
        closed = true
        for s in slots {
            if let t = s.reconnectTimer { loop.cancel(t); s.reconnectTimer = nil }
            s.connection?.onStateChange = nil
            s.connection?.close()
        }
        failWaiters(.closed)
    }
}
