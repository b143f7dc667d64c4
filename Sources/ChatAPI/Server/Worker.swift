import HTTP
import Providers
import Reactor
import Storage

/// Facts every worker shares, fixed at start-up (Sendable: handed to each worker thread).
public struct SharedState: Sendable {
    public let config: Config
    public let version: String
    public let startedAtNanos: UInt64
    /// This process among the instances sharing the database (random per start): stamped on the
    /// answers it streams and carried in its connections' application_name.
    public let instanceID: String
    /// libpq conninfo or URL of the database every worker's pool connects to.
    public let conninfo: String
    public let keys: APIKeys
    /// The model catalog at start-up; reloads reach each worker through its inbox.
    public let catalog: ModelCatalog
    let catalogStatus: CatalogStatus
    /// Every worker's loop, for /metrics to ask the others for their numbers.
    public let workers = WorkerDirectory()
    /// Wall-clock start (process_start_time_seconds).
    public let startedAtWallSeconds: Double

    init(config: Config, version: String, conninfo: String, keys: APIKeys, catalog: ModelCatalog, catalogStatus: CatalogStatus,
         startedAtNanos: UInt64 = monotonicNanos()) {
        self.config = config
        self.catalog = catalog
        self.catalogStatus = catalogStatus
        self.version = version
        self.conninfo = conninfo
        self.keys = keys
        self.startedAtNanos = startedAtNanos
        instanceID = makeUUIDv4()
        startedAtWallSeconds = Double(wallClockMillis()) / 1000 - Double(monotonicNanos() &- startedAtNanos) / 1e9
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
    let service: ChatService
    let pool: PGPool
    let multi: CurlMulti
    private let cors: CORSPolicy
    private var drainTimer: TimerID?
    /// Created on first use, after the routes exist (their patterns are its labels).
    lazy var metrics = WorkerMetrics(routePatterns: router.patterns, upstream: service.upstreamMetrics,
                                     resilience: service.resilienceMetrics, usage: { [unowned service] in
                                         UsageCounts(byModel: service.usageLedger.byModel, refused: service.limitMetrics.refused,
                                                     ledgerRowsDropped: service.usageLedger.droppedRows,
                                                     admissionsLocal: service.limitMetrics.admissionsLocal,
                                                     admissionsWaited: service.limitMetrics.admissionsWaited,
                                                     limitStatements: UInt64(service.limitWindows.statements + service.streamSlots.statements),
                                                     progressWrites: UInt64(service.progressWriter.statements),
                                                     cache: service.responseCache.counts,
                                                     upstreamPauses: service.multi.transferPauses)
                                     })
    let metricsCollection: MetricsCollection

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
        cors = CORSPolicy(origins: c.corsOrigins)
        let pgConfig = PGConfiguration(conninfo: shared.conninfo, applicationName: ChatStore.writerApplicationName(shared.instanceID))
        pool = PGPool(loop: loop, configuration: pgConfig, size: c.dbPool, maxQueue: 16_384)
        guard let m = CurlMulti(loop: loop) else { throw SystemError("curl_multi_init", code: 12) }
        multi = m
        service = ChatService(loop: loop, config: c, keys: shared.keys, pool: pool, writer: shared.instanceID, worker: index, multi: m,
                              catalog: shared.catalog, logger: logger, listenConfiguration: pgConfig)
        catalogStatus = shared.catalogStatus
        self.listeningFD = listeningFD
        metricsCollection = MetricsCollection(loop: loop)
        installRoutes()
        installAccessLog()
        installMetricsHooks()
        loop.owner = self
        pool.onHealthChange = { [unowned self] healthy in
            if healthy { self.logger.info("database reachable") } else { self.logger.error("database unavailable") }
            if healthy { self.startAccepting() }
        }
        if let dir = c.journalDir { try openJournal(directory: dir) }
        pool.start()
        service.keyDirectory.start()
        // Connections queue in the listen backlog until the pool is up (a few ms on a local
        // socket), so the first requests are not refused for a database that is only connecting.
        // A database that stays away does not keep the worker deaf: health then reports it.
        loop.schedule(afterSeconds: 3) { [unowned self] in self.startAccepting() }
        loop.onDrainRequest = { [unowned self] in self.drain() }
        scheduleHousekeeping()
    }

    /// Opens this worker's journal and writes again the answers that gone processes left in
    /// theirs (start-up, before the loop runs: it may block).
    private func openJournal(directory: String) throws(SystemError) {
        let (journal, replay) = try AnswerJournal.open(directory: directory, name: "\(shared.instanceID)-w\(index)",
                                                       loop: loop, logger: logger)
        service.journal = journal
        if replay.files > 0 {
            logger.info("journal replay", [("files", .int(replay.files)), ("answers", .int(replay.answers.count)),
                                           ("torn_bytes", .int(replay.tornBytes)), ("unreadable", .int(replay.unreadable))])
        }
        service.replay(replay.answers)
    }

    /// Connections at the last memory trim, or the most seen since.
    private var connectionPeak = 0

    /// After a crowd of streams has gone (a disconnect storm, the end of a load peak), give the
    /// memory they used back to the kernel so RSS returns to the idle baseline.
    private func scheduleHousekeeping() {
        loop.schedule(afterSeconds: 2) { [weak self] in
            guard let self, !self.finished else { return }
            let now = self.server.connectionCount
            if self.connectionPeak - now >= 500 {
                ProcessStats.releaseFreeMemory()
                self.connectionPeak = now
            }
            self.connectionPeak = max(self.connectionPeak, now)
            self.scheduleHousekeeping()
        }
    }

    private let listeningFD: Int32
    private var accepting = false
    /// How the last catalog load went (for /metrics); every worker gets the same.
    private(set) var catalogStatus: CatalogStatus

    /// A reload's outcome, on this loop: turns that start from now on route through `catalog`.
    func installCatalog(_ catalog: ModelCatalog, status: CatalogStatus) {
        service.catalog = catalog
        catalogStatus = status
    }

    private func startAccepting() {
        guard !accepting else { return }
        accepting = true
        do { try server.start(listeningFD: listeningFD) } catch {
            logger.error("cannot accept connections", [("error", .string(error.description))])
            finish()
        }
    }

    /// Runs the loop until the worker has drained or been stopped.
    public func run() {
        loop.run()
        service.journal?.join()
        logger.flush()
    }

    private func installRoutes() {
        let s = service
        router.add(.get, "/api/v1/health") { [unowned self] _, _, r in
            s.health(r, version: self.shared.version, startedAt: self.shared.startedAtNanos, worker: self.index)
        }
        router.add(.post, "/api/v1/chat") { req, _, r in s.chat(req, r) }
        router.add(.get, "/api/v1/conversations") { req, _, r in s.listConversations(req, r) }
        router.add(.get, "/api/v1/conversations/{id}") { req, p, r in s.getConversation(req, p["id"] ?? "", r) }
        router.add(.delete, "/api/v1/conversations/{id}") { req, p, r in s.deleteConversation(req, p["id"] ?? "", r) }
        router.add(.post, "/api/v1/conversations/{id}/runs/{run}/select") { req, p, r in
            s.selectRun(req, p["id"] ?? "", p["run"] ?? "", r)
        }
        router.add(.get, "/api/v1/models") { req, _, r in s.models(req, r) }
        router.add(.get, "/api/v1/usage") { req, _, r in s.usage(req, r) }
        router.add(.get, "/api/v1/messages/{id}/stream") { req, p, r in s.resumeAnswer(req, p["id"] ?? "", r) }
        let usageAdmin = AdminKeysAPI(admins: APIKeys(keys: shared.config.adminKeys), service: s)
        router.add(.get, "/admin/v1/usage") { req, _, r in usageAdmin.guarded(req, r) { s.adminUsage(req, r) } }
        router.add(.post, "/v1/chat/completions") { req, _, r in s.openAIChat(req, r) }
        router.add(.get, "/v1/models") { req, _, r in s.openAIModels(req, r) }
        router.add(.post, "/v1/messages") { req, _, r in s.anthropicMessages(req, r) }
        router.add(.post, "/v1/messages/count_tokens") { req, _, r in s.anthropicCountTokens(req, r) }
        ConsoleRoutes.install(on: router)
        installMetricsRoute()
        installAdminRoutes()
        let cors = self.cors
        router.preflight = { req, r in cors.isEnabled && cors.handlePreflight(req, r) }
    }

    private func installAccessLog() {
        let cors = self.cors
        server.onRequestStart = { r in
            let ctx = RequestContext(requestID: RequestContext.requestID(from: r.head.headers["X-Request-Id"]))
            r.context = ctx
            r.extraHeaders.add("X-Request-Id", ctx.requestID)
            cors.addHeaders(for: r.head, to: &r.extraHeaders)
        }
        server.onResponseComplete = { [unowned self] r in
            let now = monotonicNanos()
            self.metrics.requestCompleted(r, now: now)
            let micros = (now - r.startedAt + 500) / 1000
            let ctx = r.context as? RequestContext
            var extra: [(String, Logger.Value)] = []
            if let ctx, ctx.model != nil {
                if let m = ctx.model { extra.append(("model", .string(m))) }
                if let p = ctx.provider { extra.append(("provider", .string(p))) }
                if let d = ctx.deployment { extra.append(("deployment", .string(d))) }
                if let a = ctx.attempts { extra.append(("attempts", .string(a))) }
                if let t = ctx.ttftMs { extra.append(("ttft_ms", .double((t * 1000).rounded() / 1000))) }
                if let n = ctx.tokens { extra.append(("tokens", .int(n))) }
            }
            if let e = ctx?.error { extra.append(("error", .string(e))) }
            self.logger.request(requestID: ctx?.requestID ?? "", method: r.head.method.name, path: r.head.path, status: r.status,
                                bytes: r.bytesSent, durationMicros: micros, extra: extra)
        }
        server.onParseFailure = { [unowned self] status, bytes in
            self.logger.info("request", [("status", .int(status)), ("bytes", .int(bytes)), ("error", .string("malformed request"))])
        }
    }

    /// SIGTERM: go unready but keep listening. New requests are answered 503 with
    /// `Connection: close` (health says "draining"), so load balancers move traffic elsewhere while
    /// open responses finish for up to CHAT_DRAIN_S; then the streams still open end with an error
    /// event and are stored, the listener closes, and the worker stops.
    func drain() {
        guard !finished else { return }
        logger.info("draining", [("connections", .int(server.connectionCount)), ("streams", .int(service.activeTurns))])
        let s = service
        server.onRequestWhileDraining = { [unowned self] req, r in
            s.refuseWhileDraining(req, r, version: self.shared.version, startedAt: self.shared.startedAtNanos, worker: self.index)
        }
        // A worker still waiting for its database listens now, so probes see it draining too.
        startAccepting()
        guard !finished else { return }  // it could not listen, and has stopped
        server.drain { [unowned self] in self.waitForTurns() }
        drainTimer = loop.schedule(afterSeconds: shared.config.drainSeconds) { [unowned self] in
            self.drainTimer = nil
            self.logger.warn("drain period over; ending open streams", [("connections", .int(self.server.connectionCount)),
                                                                          ("streams", .int(self.service.activeTurns))])
            self.service.abortAll("the server is shutting down")
            // A moment for the final writes to reach the database and the clients.
            self.loop.schedule(afterMillis: 300) { [unowned self] in
                self.server.closeAll()
                self.finish()
            }
        }
    }

    /// Clients are gone, but answers whose client left may still be finishing upstream to be stored,
    /// and answers finished while the database was away may still be waiting to be written (those
    /// in the journal need not: the next start-up writes them).
    private func waitForTurns() {
        if service.activeTurns == 0 && service.unjournaledAnswerWrites == 0 {
            finish()
        } else {
            loop.schedule(afterMillis: 50) { [unowned self] in self.waitForTurns() }
        }
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        if let t = drainTimer { loop.cancel(t); drainTimer = nil }
        // The listener and any probe connections made during the drain.
        server.closeAll()
        multi.close()
        service.keyDirectory.stop()
        service.progressWriter.stop()
        service.responseCache.stop()
        service.remoteFollowers.close()
        service.journal?.close()
        // Usage and charges not yet written, and stream slots held, go to the database before
        // its connections close (bounded: a database that is away does not hold the exit).
        let s = service
        var waiting = 3
        let done = { [unowned self] in
            waiting -= 1
            guard waiting == 0 else { return }
            self.pool.close()
            self.loop.stop()
        }
        s.usageLedger.flush(done)
        s.limitWindows.flush { s.limitWindows.stop(); done() }
        s.streamSlots.releaseAll(done)
        loop.schedule(afterSeconds: 2) { [unowned self] in
            guard waiting > 0 else { return }
            waiting = 0
            self.pool.close()
            self.loop.stop()
        }
    }

    private var finished = false
}
