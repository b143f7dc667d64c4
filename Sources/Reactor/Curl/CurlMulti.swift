#if canImport(Glibc)
import Glibc
#endif
import CCurl

/// The libcurl multi handle of one loop, driven by `curl_multi_socket_action`: curl tells us which
/// sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it (CURLMOPT_TIMERFUNCTION); the
/// loop tells curl what became ready. One per `EventLoop`, used only on that loop's thread.
///
/// Owns: the CURLM handle, one epoll registration per socket curl asked us to watch, curl's single
/// loop timer, and every running `CurlTransfer` (kept alive here until it completes).
public final class CurlMulti {
    /// Connection policy for every transfer of this multi.
    public struct Configuration: Sendable {
        /// CURLMOPT_MAX_HOST_CONNECTIONS; 0 = unlimited. With h2 extra streams queue on one connection.
        public var maxHostConnections: Int
        /// CURLMOPT_MAX_TOTAL_CONNECTIONS; 0 = unlimited.
        public var maxTotalConnections: Int
        /// CURLMOPT_MAXCONNECTS: size of the idle connection cache; nil = curl's default.
        public var maxConnects: Int?

        public init(maxHostConnections: Int = 0, maxTotalConnections: Int = 0, maxConnects: Int? = nil) {
            self.maxHostConnections = maxHostConnections
            self.maxTotalConnections = maxTotalConnections
            self.maxConnects = maxConnects
        }
    }

    /// Transfers held back by backpressure (the write callback returned CURL_WRITEFUNC_PAUSE), over
    /// this multi's life: the proof that a slow client really paused its upstream.
    public internal(set) var transferPauses: UInt64 = 0

    /// Callback counts, for tests, benches and the watchdog dump.
    public struct Stats: Sendable {
        public var socketCallbacks = 0
        /// CURL_POLL_REMOVE calls; a pause makes one without the socket closing (docs/reactor-notes.md C1).
        public var socketRemoves = 0
        public var timerCallbacks = 0
        /// Timer callbacks with 0 ms ("act soon"): served by a 0 ms loop timer, never inline (docs/reactor-notes.md C3).
        public var zeroTimers = 0
        public var socketActions = 0
        public var completed = 0
    }

    /// Held strongly: the multi's sockets and timer live on it, so it must outlive them (no cycle:
    /// the loop reaches us only through unowned/weak references).
    public let loop: EventLoop
    public private(set) var stats = Stats()
    private let multi: CurlMultiHandle
    private var transfers: [CurlEasyHandle: CurlTransfer] = [:]
    private var sockets: [Int32: CurlSocket] = [:]
    private var timer: TimerID?
    private var timerDeadlineMs: Int = -1
    /// > 0 while curl is on the stack (socket_action, easy_pause): curl must not be re-entered
    /// from its own callbacks, so adds and removes requested then are deferred to nextTick.
    private(set) var curlDepth = 0
    private var closed = false

    /// Creates the multi handle and binds its callbacks to `loop`; nil if curl cannot allocate it.
    public init?(loop: EventLoop, configuration: Configuration = Configuration()) {
        CurlGlobal.initialize()
        guard let m = CurlMultiHandle.make() else { return nil }
        self.loop = loop
        self.multi = m
        let me = Unmanaged.passUnretained(self).toOpaque()  // we own the handle and clean it up in deinit
        _ = ccurl_multi_setopt_socket_cb(m.raw) { _, fd, what, userp, _ in
            guard let userp else { return -1 }
            Unmanaged<CurlMulti>.fromOpaque(userp).takeUnretainedValue().socketCallback(fd: fd, what: what)
            return 0
        }
        m.set(CURLMOPT_SOCKETDATA, pointer: me)
        _ = ccurl_multi_setopt_timer_cb(m.raw) { _, timeoutMs, userp in
            guard let userp else { return -1 }
            Unmanaged<CurlMulti>.fromOpaque(userp).takeUnretainedValue().timerCallback(timeoutMs)
            return 0
        }
        m.set(CURLMOPT_TIMERDATA, pointer: me)
        // Many streams to one provider share one h2 connection (with PIPEWAIT on each easy handle).
        m.set(CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX)
        m.set(CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxHostConnections)
        m.set(CURLMOPT_MAX_TOTAL_CONNECTIONS, configuration.maxTotalConnections)
        if let n = configuration.maxConnects { m.set(CURLMOPT_MAXCONNECTS, n) }
    }

    deinit {
        // Without callbacks: whoever dropped us is gone. Handles first, then the multi.
        for (easy, t) in transfers {
            multi.remove(easy)
            t.releaseResources()
        }
        transfers.removeAll()
        // Not s.unwatch(): it reaches us through an unowned reference, which traps while we deinit.
        for (_, s) in sockets { if let t = s.token { loop.deregister(t) } }
        if let t = timer { loop.cancel(t) }
        multi.cleanup()
    }

    // MARK: Transfers

    /// Starts one upstream request. Always returns a transfer; a set-up failure is reported
    /// through `onComplete` on the next tick, so completion is asynchronous and exactly once.
    public func start(_ call: UpstreamCall, delegate: CurlTransferDelegate) -> CurlTransfer {
        let t = CurlTransfer(call: call, multi: self, delegate: delegate)
        if closed {
            t.failLater(TransferError(.transport, detail: "curl multi is closed"))
        } else if curlDepth > 0 {
            loop.nextTick { [weak self, t] in self?.attach(t) }
        } else {
            attach(t)
        }
        return t
    }

    private func attach(_ t: CurlTransfer) {
        guard !t.isCompleted else { return }
        guard let easy = t.easy else { return }  // set-up failed; failLater already queued
        transfers[easy] = t
        let rc = multi.add(easy)  // calls our timer callback (usually 0): that only arms a loop timer
        if rc != CURLM_OK {
            transfers[easy] = nil
            t.finish(.failure(TransferError(.transport, curlCode: Int32(rc.rawValue),
                                            detail: "curl_multi_add_handle: " + String(cString: curl_multi_strerror(rc)))),
                     detached: true)
            return
        }
        t.didStart()
    }

    /// Removes a transfer's easy handle from the multi. Never from inside a curl callback (docs/reactor-notes.md C6):
    /// callers are `finish` paths that run from the loop (timers, nextTick, after socket_action).
    func detach(_ t: CurlTransfer) {
        guard let easy = t.easy, transfers.removeValue(forKey: easy) != nil else { return }
        // A paused transfer's socket was already REMOVEd at pause time; expect no callback here (docs/reactor-notes.md C6).
        multi.remove(easy)
    }

    /// Running transfers.
    public var transferCount: Int { transfers.count }
    /// Sockets curl currently asks us to watch.
    public var watchedSocketCount: Int { sockets.values.filter { $0.token != nil }.count }
    /// Whether curl's timer is armed on the loop.
    public var timerArmed: Bool { timer != nil }

    /// Cancels every running transfer (each completes with `.cancelled`) and refuses new ones.
    public func close() {
        closed = true
        for t in Array(transfers.values) { t.cancel() }
    }

    // MARK: curl → loop

    private func socketCallback(fd: Int32, what: Int32) {
        stats.socketCallbacks += 1
        if what == CURL_POLL_REMOVE {
            // REMOVE is not "closed": a paused transfer removes its socket and re-adds the same fd on
            // resume (docs/reactor-notes.md C1). curl owns the socket: stop watching it, never close it.
            stats.socketRemoves += 1
            sockets.removeValue(forKey: fd)?.unwatch()
            return
        }
        var interest: Interest = []
        if what & CURL_POLL_IN != 0 { interest.insert(.readable) }
        if what & CURL_POLL_OUT != 0 { interest.insert(.writable) }
        let s: CurlSocket
        if let existing = sockets[fd] {
            s = existing
        } else {
            s = CurlSocket(fd: fd, multi: self)
            sockets[fd] = s
        }
        // register() falls back to MOD on EEXIST and modify() to ADD on ENOENT, so a re-added or
        // reused fd number works either way.
        if !s.watch(interest) {
            sockets.removeValue(forKey: fd)
        }
    }

    private func timerCallback(_ timeoutMs: Int) {
        stats.timerCallbacks += 1
        // A new value replaces the old timer; -1 only deletes it.
        if let t = timer { loop.cancel(t); timer = nil }
        timerDeadlineMs = timeoutMs
        guard timeoutMs >= 0 else { return }
        if timeoutMs == 0 { stats.zeroTimers += 1 }
        // 0 means "soon", but curl must not be called from inside its own callback (docs/reactor-notes.md C3): a 0 ms
        // loop timer runs after the current batch.
        timer = loop.schedule(afterMillis: Int64(timeoutMs), timerFired)
    }

    /// curl's timer, built once: curl re-arms it often (every add, pause and resume, and as its
    /// own deadlines move), and a closure per arming would be an allocation each time.
    private lazy var timerFired: () -> Void = { [weak self] in
        guard let self else { return }
        self.timer = nil
        self.timerDeadlineMs = -1
        self.action(CURL_SOCKET_TIMEOUT, 0)
    }

    // MARK: loop → curl

    fileprivate func socketReady(fd: Int32, events: IOEvents) {
        var mask: Int32 = 0
        if events.contains(.readable) || events.contains(.readHangup) || events.contains(.hangup) { mask |= CURL_CSELECT_IN }
        if events.contains(.writable) { mask |= CURL_CSELECT_OUT }
        if events.contains(.error) { mask |= CURL_CSELECT_ERR }  // ephiperfifo omits it; curl then sees the error sooner
        action(fd, mask)
    }

    private func action(_ fd: Int32, _ mask: Int32) {
        stats.socketActions += 1
        withCurl { _ = multi.socketAction(fd, mask) }
        reapCompleted()
    }

    /// Runs a curl call, marking curl as on the stack so callbacks defer add/remove.
    func withCurl<R>(_ body: () -> R) -> R {
        curlDepth += 1
        defer { curlDepth -= 1 }
        return body()
    }

    /// Drains curl's DONE messages. Runs only outside curl callbacks (after socket_action or
    /// easy_pause returned), so removing the handle here is allowed.
    func reapCompleted() {
        guard curlDepth == 0 else { return }
        while let done = multi.nextDone() {  // easy and result copied before remove (docs/reactor-notes.md C7)
            guard let t = transfers.removeValue(forKey: done.easy) else {
                multi.remove(done.easy)
                continue
            }
            multi.remove(done.easy)
            stats.completed += 1
            t.curlDone(done.result)
        }
    }

    /// Lines for a watchdog dump: transfers, paused flags, watched sockets, curl's timer.
    public var stateDescription: String {
        var lines = ["curl multi: \(transfers.count) transfers, \(watchedSocketCount) sockets, timer \(timer == nil ? "off" : "armed(\(timerDeadlineMs) ms)"), stats \(stats)"]
        for s in sockets.values.sorted(by: { $0.fd < $1.fd }) { lines.append("  socket fd=\(s.fd) interest=\(s.interestDescription)") }
        for t in transfers.values { lines.append("  " + t.stateDescription) }
        return lines.joined(separator: "\n")
    }
}

/// One socket curl asked us to watch. The registration lives from ADD to REMOVE; the fd is curl's.
final class CurlSocket: IOHandler {
    let fd: Int32
    private unowned let multi: CurlMulti
    private(set) var token: RegistrationToken?

    init(fd: Int32, multi: CurlMulti) {
        self.fd = fd
        self.multi = multi
    }

    /// Registers or changes interest; false if epoll refused the fd.
    func watch(_ interest: Interest) -> Bool {
        do {
            if let t = token, multi.loop.interest(of: t) != nil {
                try multi.loop.modify(t, interest: interest)
            } else {
                token = try multi.loop.register(fd: fd, interest: interest, handler: self)
            }
            return true
        } catch {
            token = nil
            return false
        }
    }

    func unwatch() {
        if let t = token { multi.loop.deregister(t); token = nil }
    }

    func handleIO(_ events: IOEvents) { multi.socketReady(fd: fd, events: events) }

    var interestDescription: String {
        guard let t = token, let i = multi.loop.interest(of: t) else { return "none" }
        return (i.contains(.readable) ? "in" : "") + (i.contains(.writable) ? "out" : "")
    }
}
