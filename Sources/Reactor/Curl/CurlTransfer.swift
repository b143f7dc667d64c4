#if canImport(Glibc)
import Glibc
#endif
import CCurl

/// What the consumer does with a delivered chunk.
public enum BodyDisposition: Sendable {
    /// The bytes were consumed.
    case accept
    /// Nothing was consumed: curl keeps these same bytes and delivers them again after `resume()`.
    case pause
}

/// The owner of one upstream transfer. All calls happen on the loop thread; after
/// `transferDidComplete` nothing more is called and the transfer drops its delegate.
public protocol CurlTransferDelegate: AnyObject {
    /// Status and headers of the final response (1xx interim heads are skipped), once, before any body.
    func transferDidReceiveHead(_ transfer: CurlTransfer, status: Int, headers: [(String, String)])
    /// Body bytes, valid only during the call. `.pause` consumes none of them (CURL_WRITEFUNC_PAUSE:
    /// a short count would be CURLE_WRITE_ERROR, docs/reactor-notes.md C4).
    func transferDidReceiveBody(_ transfer: CurlTransfer, _ bytes: UnsafeRawBufferPointer) -> BodyDisposition
    /// Exactly once. HTTP error statuses (429, 5xx) are a `.success` here: the head carries them.
    func transferDidComplete(_ transfer: CurlTransfer, _ result: Result<Void, TransferError>)
}

/// One upstream HTTP request on a `CurlMulti`: owns its easy handle, header slist, error buffer
/// and its first-byte/idle timers, and releases them all when it completes or is cancelled.
public final class CurlTransfer {
    public enum State: String, Sendable {
        case starting, running, completed
    }

    public private(set) var call: UpstreamCall
    public private(set) var state: State = .starting
    /// The consumer asked for no more bytes (via `.pause` or `pause()`).
    public private(set) var isPaused = false
    /// curl holds the transfer paused because our write callback returned CURL_WRITEFUNC_PAUSE.
    public private(set) var isCurlPaused = false
    public private(set) var status = 0
    public private(set) var bodyBytes = 0
    public private(set) var bodyCallbacks = 0
    public private(set) var pauseCount = 0
    public var label = ""
    public var isCompleted: Bool { state == .completed }

    weak var multi: CurlMulti?
    /// Strong for the same reason as `CurlMulti.loop`: our timers are cancelled on it in deinit.
    private let loop: EventLoop
    private var delegate: CurlTransferDelegate?
    private(set) var easy: CurlEasyHandle?
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var errorBuffer: UnsafeMutablePointer<CChar>?
    private var firstByteTimer: TimerID?
    private var idleTimer: TimerID?
    /// When the idle timer should fail the transfer: `idleTimeoutMs` after the latest body chunk.
    private var idleDeadline: UInt64 = 0
    private var headers: [(String, String)] = []
    private var headDelivered = false
    private var resumeScheduled = false
    private var cancelScheduled = false
    private var bufferLimitHit: Int?
    private var setupError: TransferError?

    init(call: UpstreamCall, multi: CurlMulti, delegate: CurlTransferDelegate) {
        self.call = call
        self.multi = multi
        self.loop = multi.loop
        self.delegate = delegate
        do throws(TransferError) { try configure() } catch {
            setupError = error
            releaseResources()
            failLater(error)
        }
        // curl copied the body (COPYPOSTFIELDS) and holds the headers in its slist: a held
        // stream need not keep a second copy of either.
        self.call.body = []
        self.call.headers = []
    }

    deinit { releaseResources() }

    // MARK: Set-up

    private func configure() throws(TransferError) {
        guard let e = CurlEasyHandle.make() else { throw TransferError(.transport, detail: "curl_easy_init failed") }
        easy = e
        func check(_ rc: CURLcode, _ what: String) throws(TransferError) {
            guard rc == CURLE_OK else {
                throw TransferError(.transport, curlCode: Int32(bitPattern: rc.rawValue),
                                    detail: "\(what): " + String(cString: curl_easy_strerror(rc)))
            }
        }
        let me = Unmanaged.passUnretained(self).toOpaque()  // the multi keeps us alive while the handle is in it
        // No signals in a threaded/loop process (docs/reactor-notes.md C9); SIGPIPE is ignored process-wide instead.
        try check(e.set(CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        try check(e.set(CURLOPT_URL, string: call.url), "URL")
        let buf = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
        buf.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        errorBuffer = buf
        try check(e.set(CURLOPT_ERRORBUFFER, pointer: UnsafeMutableRawPointer(buf)), "ERRORBUFFER")
        try check(e.set(CURLOPT_PRIVATE, pointer: me), "PRIVATE")
        try check(ccurl_easy_setopt_write_cb(e.raw) { ptr, size, count, userdata in
            guard let userdata else { return 0 }
            // Guaranteed: the multi holds the transfer while curl runs it, so no retain per chunk.
            return Unmanaged<CurlTransfer>.fromOpaque(userdata)._withUnsafeGuaranteedRef {
                $0.received(UnsafeRawBufferPointer(start: ptr, count: size * count))
            }
        }, "WRITEFUNCTION")
        try check(e.set(CURLOPT_WRITEDATA, pointer: me), "WRITEDATA")
        try check(ccurl_easy_setopt_header_cb(e.raw) { ptr, size, count, userdata in
            guard let userdata else { return 0 }
            let t = Unmanaged<CurlTransfer>.fromOpaque(userdata).takeUnretainedValue()
            t.receivedHeaderLine(UnsafeRawBufferPointer(start: ptr, count: size * count))
            return size * count
        }, "HEADERFUNCTION")
        try check(e.set(CURLOPT_HEADERDATA, pointer: me), "HEADERDATA")

        // The slist is not copied by curl (docs/reactor-notes.md C10): it lives until releaseResources.
        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in call.headers {
            guard let next = curl_slist_append(list, "\(name): \(value)") else {
                curl_slist_free_all(list)
                throw TransferError(.transport, detail: "curl_slist_append failed")
            }
            list = next
        }
        // curl sends "Expect: 100-continue" for HTTP/1.1 bodies > 1 KiB and waits up to 1 s for a 100
        // that most APIs never send; an empty "Expect:" suppresses it.
        if let next = curl_slist_append(list, "Expect:") { list = next }
        headerList = list
        try check(e.set(CURLOPT_HTTPHEADER, list: list), "HTTPHEADER")

        switch call.method {
        case .get:
            try check(e.set(CURLOPT_HTTPGET, 1), "HTTPGET")
        case .post:
            // POSTFIELDS is not copied (docs/reactor-notes.md C10): COPYPOSTFIELDS copies, after the size is set
            // (so binary bodies with NULs are taken whole).
            try check(e.set(CURLOPT_POSTFIELDSIZE_LARGE, offset: Int64(call.body.count)), "POSTFIELDSIZE")
            let rc = call.body.withUnsafeBytes { b -> CURLcode in
                // An empty array may have no base address; curl wants a valid pointer for "".
                guard let base = b.baseAddress else { return e.set(CURLOPT_COPYPOSTFIELDS, string: "") }
                return e.set(CURLOPT_COPYPOSTFIELDS, pointer: UnsafeMutableRawPointer(mutating: base))
            }
            try check(rc, "COPYPOSTFIELDS")
        }
        switch call.httpVersion {
        case .http1_1: try check(e.set(CURLOPT_HTTP_VERSION, ccurl_HTTP_VERSION_1_1()), "HTTP_VERSION")
        case .http2: try check(e.set(CURLOPT_HTTP_VERSION, ccurl_HTTP_VERSION_2TLS()), "HTTP_VERSION")
        }
        // Wait for an existing connection's h2 support rather than opening a second one (docs/reactor-notes.md C8).
        try check(e.set(CURLOPT_PIPEWAIT, 1), "PIPEWAIT")
        try check(e.set(CURLOPT_TCP_NODELAY, 1), "TCP_NODELAY")
        try check(e.set(CURLOPT_BUFFERSIZE, max(1024, call.receiveBufferBytes)), "BUFFERSIZE")
        try check(e.set(CURLOPT_UPLOAD_BUFFERSIZE, max(16 * 1024, call.uploadBufferBytes)), "UPLOAD_BUFFERSIZE")
        // CURLOPT_ACCEPT_ENCODING stays unset: identity, so SSE bytes reach us as the server sent them.
        if call.connectTimeoutMs > 0 { try check(e.set(CURLOPT_CONNECTTIMEOUT_MS, call.connectTimeoutMs), "CONNECTTIMEOUT_MS") }
    }

    /// Reports a failure on the next tick, so `start` never calls the delegate re-entrantly.
    func failLater(_ error: TransferError) {
        loop.nextTick { [self] in self.finish(.failure(error), detached: true) }
    }

    func didStart() {
        state = .running
        if call.firstByteTimeoutMs > 0 {
            firstByteTimer = loop.schedule(afterMillis: Int64(call.firstByteTimeoutMs)) { [weak self] in
                guard let self else { return }
                self.firstByteTimer = nil
                self.finish(.failure(TransferError(.timeout(.firstByte), detail: "no body byte within \(self.call.firstByteTimeoutMs) ms")))
            }
        }
    }

    // MARK: curl callbacks (curl is on the stack: no add/remove here)

    private func receivedHeaderLine(_ raw: UnsafeRawBufferPointer) {
        guard state != .completed, !cancelScheduled, !headDelivered else { return }  // later lines are trailers
        // Trim CR/LF as bytes: as Characters, "\r\n" is one grapheme and matches neither "\r" nor "\n".
        var end = raw.count
        while end > 0, raw[end - 1] == 13 || raw[end - 1] == 10 { end -= 1 }
        let line = String(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<end]), as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            // A new status line starts a new head (after 1xx, or a redirect hop): forget the previous one.
            headers.removeAll()
            let parts = line.split(separator: " ", maxSplits: 2)
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        } else if line.isEmpty {
            guard status >= 200 else { return }  // 1xx interim head: the real one follows
            deliverHead()
        } else if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon]).lowercased()
            let value = line[line.index(after: colon)...].drop(while: { $0 == " " || $0 == "\t" })
            headers.append((name, String(value)))
        }
    }

    private func deliverHead() {
        guard !headDelivered else { return }
        headDelivered = true
        let h = headers
        headers = []
        delegate?.transferDidReceiveHead(self, status: status, headers: h)
    }

    private func received(_ bytes: UnsafeRawBufferPointer) -> Int {
        // Cancelled but not yet removed (removal waits for curl to be off the stack): take nothing.
        guard state == .running, !cancelScheduled, let delegate else { return Int(CURL_WRITEFUNC_PAUSE) }
        if !headDelivered { deliverHead() }
        if isPaused {
            return holdBack(bytes.count)
        }
        bodyCallbacks += 1
        if let t = firstByteTimer { loop.cancel(t); firstByteTimer = nil }
        switch delegate.transferDidReceiveBody(self, bytes) {
        case .accept:
            bodyBytes += bytes.count
            if state == .running && !cancelScheduled { armIdleTimer() }
            return bytes.count
        case .pause:
            isPaused = true
            return holdBack(bytes.count)
        }
    }

    /// Returns CURL_WRITEFUNC_PAUSE; curl keeps these bytes and re-delivers them on resume.
    private func holdBack(_ count: Int) -> Int {
        if count > call.maxBufferedBytes {
            // Returning a short count makes curl fail with CURLE_WRITE_ERROR; curlDone maps it to ours.
            bufferLimitHit = count
            return 0
        }
        if !isCurlPaused {
            pauseCount += 1
            multi?.transferPauses &+= 1
        }
        isCurlPaused = true
        // Our backpressure, not upstream silence: the idle clock stops while paused.
        if let t = idleTimer { loop.cancel(t); idleTimer = nil }
        return Int(CURL_WRITEFUNC_PAUSE)
    }

    /// Each body chunk only moves the deadline; the one scheduled timer re-arms itself for the
    /// remainder when it fires early. Cancelling and scheduling a timer per chunk (per token) cost
    /// a closure and heap work on the hot path. The deadline counts from the loop pass's cached
    /// clock: a chunk is read in the pass that woke for it, and a timeout of seconds does not need
    /// a clock read per token.
    private func armIdleTimer() {
        guard call.idleTimeoutMs > 0 else { return }
        let nanos = UInt64(call.idleTimeoutMs) * 1_000_000
        idleDeadline = loop.now &+ nanos
        if idleTimer == nil { scheduleIdleTimer(afterNanos: nanos) }
    }

    private func scheduleIdleTimer(afterNanos nanos: UInt64) {
        idleTimer = loop.schedule(afterNanos: nanos) { [weak self] in
            guard let self else { return }
            self.idleTimer = nil
            let now = monotonicNanos()
            if now < self.idleDeadline {
                self.scheduleIdleTimer(afterNanos: self.idleDeadline - now)
                return
            }
            self.finish(.failure(TransferError(.timeout(.idle), detail: "no body byte for \(self.call.idleTimeoutMs) ms")))
        }
    }

    // MARK: Control

    /// Asks for no more body bytes; the next delivery is held back by curl until `resume()`.
    public func pause() {
        guard state != .completed else { return }
        isPaused = true
        if let t = idleTimer { loop.cancel(t); idleTimer = nil }
    }

    /// Lets bytes flow again. Runs on the next tick and re-checks state then: curl_easy_pause(CONT)
    /// may call the write callback before it returns (docs/reactor-notes.md C2), so never call it re-entrantly.
    public func resume() {
        guard state != .completed, isPaused, !resumeScheduled else { return }
        resumeScheduled = true
        loop.nextTick { [weak self] in
            guard let self else { return }
            self.resumeScheduled = false
            guard self.state == .running, !self.cancelScheduled, self.isPaused, let easy = self.easy, let multi = self.multi else { return }
            self.isPaused = false
            if self.bodyCallbacks > 0 { self.armIdleTimer() }
            guard self.isCurlPaused else { return }
            self.isCurlPaused = false
            // On unpause curl re-arms its timer with 0 and re-adds the same fd (docs/reactor-notes.md C1): both handled there.
            let rc = multi.withCurl { easy.pause(CURLPAUSE_CONT) }
            multi.reapCompleted()
            if rc != CURLE_OK && self.state != .completed {
                self.finish(.failure(TransferError.from(rc, errorBuffer: self.errorText)))
            }
        }
    }

    /// Stops the transfer at any moment. Completion (`.cancelled`) and the release of the easy
    /// handle, slist, timers and socket registrations happen on the next tick, outside any curl
    /// callback (curl_multi_remove_handle must not run inside one, docs/reactor-notes.md C6). No delegate call
    /// other than that completion follows. A no-op after completion.
    public func cancel() {
        guard state != .completed, !cancelScheduled else { return }
        cancelScheduled = true
        if let t = firstByteTimer { loop.cancel(t); firstByteTimer = nil }
        if let t = idleTimer { loop.cancel(t); idleTimer = nil }
        loop.nextTick { [self] in
            self.finish(.failure(TransferError(.cancelled, detail: "cancelled by the caller")))
        }
    }

    // MARK: Completion

    /// curl reported DONE; the multi already removed the handle.
    func curlDone(_ code: CURLcode) {
        if cancelScheduled {
            finish(.failure(TransferError(.cancelled, detail: "cancelled by the caller")), detached: true)
        } else if code == CURLE_OK {
            if !headDelivered && status > 0 { deliverHead() }
            finish(.success(()), detached: true)
        } else if code == CURLE_WRITE_ERROR, let n = bufferLimitHit {
            finish(.failure(TransferError(.bufferLimit, curlCode: Int32(bitPattern: code.rawValue),
                                          detail: "a single delivery of \(n) bytes exceeds maxBufferedBytes \(call.maxBufferedBytes) while the consumer is paused")),
                   detached: true)
        } else {
            finish(.failure(TransferError.from(code, errorBuffer: errorText)), detached: true)
        }
    }

    /// Completes exactly once: timers off, handle out of the multi, resources freed, delegate told
    /// and dropped. Runs from the loop (timers, nextTick, after socket_action), never inside curl.
    func finish(_ result: Result<Void, TransferError>, detached: Bool = false) {
        guard state != .completed else { return }
        state = .completed
        if !detached { multi?.detach(self) }
        releaseResources()
        let d = delegate
        delegate = nil
        d?.transferDidComplete(self, result)
    }

    /// Frees the easy handle, header list, error buffer and timers. Idempotent.
    func releaseResources() {
        if let t = firstByteTimer { loop.cancel(t); firstByteTimer = nil }
        if let t = idleTimer { loop.cancel(t); idleTimer = nil }
        if let e = easy { e.cleanup(); easy = nil }
        // After easy_cleanup: the handle may reference the slist until then (docs/reactor-notes.md C10).
        if let l = headerList { curl_slist_free_all(l); headerList = nil }
        if let b = errorBuffer { b.deallocate(); errorBuffer = nil }
    }

    private var errorText: String {
        guard let b = errorBuffer else { return "" }
        return String(cString: b)
    }

    /// One line for the watchdog dump.
    public var stateDescription: String {
        "transfer \(label) \(call.url) state=\(state.rawValue) status=\(status) bytes=\(bodyBytes) chunks=\(bodyCallbacks) paused=\(isPaused) curlPaused=\(isCurlPaused) pauses=\(pauseCount) cancelling=\(cancelScheduled) timers=\(firstByteTimer != nil ? "firstByte " : "")\(idleTimer != nil ? "idle" : "")"
    }
}
