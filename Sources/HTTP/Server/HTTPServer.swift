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
        if connections.count >= config.maxConnections || isDraining {
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
        if isDraining && connections.isEmpty { finishDrain() }
    }

    func requestStarted(_ r: HTTPResponder) {
        stats.requests += 1
        onRequestStart?(r)
    }

    func countParseError() { stats.parseErrors += 1 }
    func countSlowClient() { stats.slowClientsDropped += 1 }
    func logParseFailure(status: Int, bytes: Int) { onParseFailure?(status, bytes) }

    /// Stops accepting (the listener closes, so the kernel sends new connections to other workers
    /// or refuses them), closes idle connections, and calls `done` when the last one has gone.
    public func drain(_ done: @escaping () -> Void) {
        guard !isDraining else { return }
        isDraining = true
        drainDone = done
        listener?.close()
        for c in Array(connections.values) { c.beginDrain() }
        if connections.isEmpty { finishDrain() }
    }

    private func finishDrain() {
        let d = drainDone
        drainDone = nil
        d?()
    }

    /// Closes every connection now (end of the drain period).
    public func closeAll() {
        listener?.close()
        for c in Array(connections.values) { c.close() }
    }

    /// One line per connection, for the watchdog dump.
    public var stateDump: String {
        connections.values.map { $0.tcp.stateDescription }.joined(separator: "\n")
    }
}
