#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// The HTTP/1.1 server of one worker loop: a listener, the connections it accepted, and the router.
public final class HTTPServer {
    public let config: HTTPServerConfig
    public let router: Router
    public unowned let loop: EventLoop
    private var listener: TCPListener?
    private var connections: [ObjectIdentifier: HTTPServerConnection] = [:]
    public private(set) var isDraining = false
    private var drainDone: (() -> Void)?
    /// Connections open when the drain began that have not closed yet: the drain waits for these
    /// only, so probes and refused requests arriving during the drain never hold it open.
    private var drainHolders = 0

    /// Answers every request that arrives during a drain (health probes, refused work); the
    /// application picks the body. Unset: docs/API.md's 503 `overloaded`.
    public var onRequestWhileDraining: ((HTTPRequest, HTTPResponder) -> Void)?

    /// Called when a request is dispatched (before the handler), and when its response completes.
    public var onRequestStart: ((HTTPResponder) -> Void)?
    /// Installed as every responder's `onComplete` (access logs): one closure for the server
    /// instead of one allocated per request in `onRequestStart`.
    public var onResponseComplete: ((HTTPResponder) -> Void)?
    /// Installed as every responder's `onHeadWrite` (Server-Timing): raw header lines appended
    /// to each response head as it is written.
    public var onResponseHead: ((HTTPResponder, inout [UInt8]) -> Void)?
    /// Called for requests refused by the parser (no responder exists for them).
    public var onParseFailure: ((Int, Int) -> Void)?

    public private(set) var stats = Stats()
    public struct Stats: Sendable {
        public var accepted = 0
        public var refusedOverLimit = 0
        public var parseErrors = 0
        public var slowClientsDropped = 0
        public var requests = 0
    }

    public init(loop: EventLoop, config: HTTPServerConfig, router: Router) {
        self.loop = loop
        self.config = config
        self.router = router
    }

    /// Starts accepting on an already-bound listening socket (one per worker with SO_REUSEPORT).
    public func start(listeningFD fd: Int32) throws(SystemError) {
        listener = try TCPListener(loop: loop, fd: fd) { [unowned self] in self.accept($0) }
    }

    public var port: Int { listener?.port ?? 0 }
    public var connectionCount: Int { connections.count }

    private func accept(_ fd: Int32) {
        stats.accepted += 1
        // Draining still accepts: a new request learns "shutting down" (a 503 a load balancer
        // retries elsewhere) instead of a refused connection, and health probes see the drain.
        if connections.count >= config.maxConnections {
            stats.refusedOverLimit += 1
            refuse(fd)
            return
        }
        let tcp: TCPConnection
        do { tcp = try TCPConnection(loop: loop, fd: fd, limits: config.connectionLimits) } catch {
            _ = Glibc.close(fd)
            return
        }
        let c = HTTPServerConnection(tcp: tcp, server: self)
        connections[ObjectIdentifier(c)] = c
    }

    /// Past the connection limit: one best-effort 503 with Retry-After, then close. The socket is
    /// fresh, so a single non-blocking send of a small response either fits or is dropped.
    private func refuse(_ fd: Int32) {
        let began = monotonicNanos()
        let body = ErrorBody.json(type: "overloaded", message: "too many connections")
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json")
        h.add("Retry-After", "1")
        h.add("Connection", "close")
        h.add("Content-Length", String(body.count))
        h.add("Server-Timing", ServerTimingFormat.gatewayOnly(monotonicNanos() &- began))
        var out: [UInt8] = []
        HTTPResponseHead(status: 503, headers: h, versionMinor: 1).serialize(into: &out)
        out.append(contentsOf: body)
        _ = out.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        shutdown(fd, Int32(SHUT_WR))
        _ = Glibc.close(fd)
    }

    func connectionClosed(_ c: HTTPServerConnection) {
        connections[ObjectIdentifier(c)] = nil
        if c.holdsDrain {
            c.holdsDrain = false
            drainHolders -= 1
            if drainHolders == 0 { finishDrain() }
        }
    }

    /// A request that arrived during the drain: no handler runs, the answer is a 503 that closes.
    func answerWhileDraining(_ request: HTTPRequest, _ responder: HTTPResponder) {
        if let handler = onRequestWhileDraining {
            handler(request, responder)
            return
        }
        var h = HTTPHeaders()
        h.add("Retry-After", "1")
        responder.respondError(status: 503, type: "overloaded", message: "the server is shutting down", headers: h)
    }

    func requestStarted(_ r: HTTPResponder) {
        stats.requests += 1
        onRequestStart?(r)
    }

    func countParseError() { stats.parseErrors += 1 }
    func countSlowClient() { stats.slowClientsDropped += 1 }
    func logParseFailure(status: Int, bytes: Int) { onParseFailure?(status, bytes) }

    /// Begins a graceful drain. The listener stays open so load balancers and probes see the
    /// instance go unready (every new request is answered 503 with `Connection: close`) rather
    /// than connections refused; idle connections close now, busy ones after their response.
    /// `done` runs (on a later tick) once every connection open at the start has closed.
    public func drain(_ done: @escaping () -> Void) {
        guard !isDraining else { return }
        isDraining = true
        drainDone = done
        let open = Array(connections.values)
        for c in open { c.holdsDrain = true }
        drainHolders = open.count
        for c in open { c.beginDrain() }
        if drainHolders == 0 { finishDrain() }
    }

    private func finishDrain() {
        guard let d = drainDone else { return }
        drainDone = nil
        // Not from inside a connection's close: `done` may close every connection itself.
        loop.nextTick { d() }
    }

    /// Closes the listener and every connection now (end of the drain).
    public func closeAll() {
        listener?.close()
        for c in Array(connections.values) { c.close() }
    }

    /// One line per connection, for the watchdog dump.
    public var stateDump: String {
        connections.values.map { $0.tcp.stateDescription }.joined(separator: "\n")
    }
}
