#if canImport(Glibc)
import Glibc
#endif
import Reactor
import HTTP

/// Facts every worker shares, fixed at start-up (Sendable: handed to each worker thread).
public struct SharedState: Sendable {
    public let config: Config
    public let version: String
    public let startedAtNanos: UInt64

    public init(config: Config, version: String, startedAtNanos: UInt64 = monotonicNanos()) {
        self.config = config
        self.version = version
        self.startedAtNanos = startedAtNanos
    }
}

/// One worker: a reactor on its own thread with its own listener (SO_REUSEPORT), HTTP server,
/// and (later) curl multi and PostgreSQL pool. Shares nothing mutable with other workers.
public final class Worker {
    public let index: Int
    public let loop: EventLoop
    public let shared: SharedState
    public let server: HTTPServer
    public let logger: Logger
    let router = Router()
    private var drainTimer: TimerID?

    public init(index: Int, shared: SharedState, listeningFD: Int32) throws(SystemError) {
        self.index = index
        self.shared = shared
        loop = try EventLoop()
        let c = shared.config
        var limits = HTTPParserLimits()
        limits.maxBodyBytes = c.maxBodyBytes
        let serverConfig = HTTPServerConfig(parserLimits: limits, headerTimeoutSeconds: c.headerTimeoutSeconds,
                                            idleTimeoutSeconds: c.idleTimeoutSeconds, maxConnections: c.maxConnections)
        server = HTTPServer(loop: loop, config: serverConfig, router: router)
        logger = Logger(format: c.logFormat, level: c.logLevel, worker: index, loop: loop)
        installRoutes()
        installAccessLog()
        try server.start(listeningFD: listeningFD)
        loop.onDrainRequest = { [unowned self] in self.drain() }
    }

    /// Runs the loop until the worker has drained or been stopped.
    public func run() {
        loop.run()
        logger.flush()
    }

    private func installRoutes() {
        router.add(.get, "/api/v1/health") { [unowned self] _, _, r in self.health(r) }
    }

    private func installAccessLog() {
        server.onResponseComplete = { [unowned self] r in
            let micros = (monotonicNanos() - r.startedAt + 500) / 1000
            self.logger.request(method: r.head.method.name, path: r.head.path, status: r.status,
                                bytes: r.bytesSent, durationMicros: micros)
        }
        server.onParseFailure = { [unowned self] status, bytes in
            self.logger.info("request", [("status", .int(status)), ("bytes", .int(bytes)), ("error", .string("malformed request"))])
        }
    }

    /// `{"status":"ok","version":"…","uptime_s":`: fixed for the process, built once.
    private lazy var healthPrefix: [UInt8] = Array(#"{"status":"ok","version":"\#(shared.version)","uptime_s":"#.utf8)
    private lazy var healthSuffix: [UInt8] = Array(#","worker":\#(index)}"#.utf8)
    private var healthHeaders: HTTPHeaders = ["Content-Type": "application/json"]

    func health(_ r: HTTPResponder) {
        // The cheapest request there is, and what load balancers poll: no String building.
        let uptime = (monotonicNanos() - shared.startedAtNanos) / 1_000_000_000
        var body = healthPrefix
        body.reserveCapacity(healthPrefix.count + 20 + healthSuffix.count)
        body.append(contentsOf: String(uptime).utf8)
        body.append(contentsOf: healthSuffix)
        r.respond(status: 200, headers: healthHeaders, body: body)
    }

    /// SIGTERM: stop accepting, let open responses finish for up to CHAT_DRAIN_S, then stop.
    func drain() {
        logger.info("draining", [("connections", .int(server.connectionCount))])
        server.drain { [unowned self] in self.finish() }
        drainTimer = loop.schedule(afterSeconds: shared.config.drainSeconds) { [unowned self] in
            self.drainTimer = nil
            self.logger.warn("drain period over; closing remaining connections", [("connections", .int(self.server.connectionCount))])
            self.server.closeAll()
            self.finish()
        }
    }

    private func finish() {
        if let t = drainTimer { loop.cancel(t); drainTimer = nil }
        loop.stop()
    }
}
