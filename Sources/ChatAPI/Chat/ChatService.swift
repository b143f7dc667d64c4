import HTTP
import Providers
import Reactor
import Storage

/// What one worker needs to run chat turns: the stores, the upstream drivers and settings.
/// It keeps every turn in progress alive until it finishes.
final class ChatService {
    let loop: EventLoop
    let config: Config
    /// The model catalog in force; a SIGHUP reload replaces it (turns under way keep their route).
    var catalog: ModelCatalog
    /// Spreads turns over a model's deployments by weight; consulted only when there is a choice.
    private var deploymentPicker = SplitMix64(seed: UInt64(truncatingIfNeeded: monotonicNanos()))
    let generation: GenerationDefaults
    let keys: APIKeys
    let pool: PGPool
    let store: ChatStore
    let multi: CurlMulti
    let logger: Logger
    let timeouts: UpstreamTimeouts
    /// How long a streamed response waits for the provider's HTTP status before sending its own
    /// head: long enough for a refusal (429, 401…) or a failed connect to be answered with its own
    /// status, short enough that headers and pings reach the client "at once" (docs/API.md).
    let headerHoldMillis: Int64 = 1_000
    var pingSeconds: Double { config.ssePingSeconds }
    private var turns: [ObjectIdentifier: ChatTurn] = [:]
    /// Provider outcomes, time to first token and tokens relayed, counted by the turns.
    let upstreamMetrics = UpstreamMetrics()
    let resilienceMetrics = ResilienceMetrics()
    /// Keys kept in the database, their limits, and the usage ledger (docs/limits.md).
    let keyDirectory: KeyDirectory
    let limitWindows: SharedWindows
    let streamSlots: StreamSlots
    let usageLedger: UsageLedger
    let limitMetrics = LimitMetrics()
    /// Answers being generated on this worker, by message id: resuming clients follow them here.
    var liveAnswers: [String: ChatTurn] = [:]
    let progressWriter: ProgressWriter
    /// Cacheable requests' shared answers and the cache in PostgreSQL (docs/API.md, "Response cache").
    let responseCache: ResponseCache
    let remoteFollowers: RemoteFollowers
    var keyLimiter: KeyLimiter { KeyLimiter(windows: limitWindows, slots: streamSlots) }
    var deploymentLimits: DeploymentLimiter { DeploymentLimiter(windows: limitWindows) }

    func nextRandom() -> UInt64 { deploymentPicker.next() }

    /// A breaker changed state: logged once, by the worker whose attempt changed it.
    func breakerChanged(_ d: Deployment, _ t: BreakerTransition) {
        let fields: [(String, Logger.Value)] = [("deployment", .string(d.id)), ("state", .string(t.rawValue))]
        if t == .opened { logger.warn("circuit breaker opened", fields) } else { logger.info("circuit breaker \(t == .closed ? "closed" : "half-open")", fields) }
    }

    init(loop: EventLoop, config: Config, keys: APIKeys, pool: PGPool, writer: String, worker: Int = 0, multi: CurlMulti,
         catalog: ModelCatalog, logger: Logger, listenConfiguration: PGConfiguration) {
        self.loop = loop
        self.config = config
        self.catalog = catalog
        generation = config.providerConfig.generation
        self.keys = keys
        self.pool = pool
        self.multi = multi
        self.logger = logger
        store = ChatStore(pool: pool, writer: writer)
        keyDirectory = KeyDirectory(loop: loop, store: KeyStore(pool: pool), logger: logger)
        let limits = LimitStore(pool: pool, writer: writer)
        limitWindows = SharedWindows(loop: loop, store: limits)
        streamSlots = StreamSlots(loop: loop, store: limits)
        usageLedger = UsageLedger(loop: loop, store: UsageStore(pool: pool), logger: logger)
        progressWriter = ProgressWriter(loop: loop, pool: pool, writer: writer, worker: worker, intervalMillis: config.progressIntervalMillis)
        remoteFollowers = RemoteFollowers(loop: loop, pool: pool, listenConfiguration: listenConfiguration)
        responseCache = ResponseCache(loop: loop, store: CacheStore(pool: pool), logger: logger, maxBytes: config.cacheMaxBytes,
                                      memoryBytes: config.cacheMemoryBytes)
        timeouts = UpstreamTimeouts(
            connectMs: Int(config.upstreamConnectTimeoutSeconds * 1000),
            firstTokenMs: Int(config.upstreamFirstTokenTimeoutSeconds * 1000),
            idleMs: Int(config.upstreamIdleTimeoutSeconds * 1000))
        progressWriter.turns = { [unowned self] in Array(self.liveAnswers.values) }
    }

    var activeTurns: Int { turns.count }

    /// Resolves a model name through the catalog to the deployment that will serve this turn,
    /// before anything is stored.
    func route(_ model: String) -> Result<RoutedModel, ProviderError> {
        let result = catalog.route(model) { deploymentPicker.next() }
        if case .success(let r) = result, r.deployment.kind == .mock, !MockModel.isModelName(r.model) {
            // Reject unknown mock names now rather than after the turn is stored.
            return .failure(ProviderError(.unknownModel, "unknown model '\(model)'", param: "model"))
        }
        return result
    }

    /// A request's own fallback models must all be served here, so a typo fails now, not mid-turn.
    func checkFallbacks(_ names: [String]?) -> ProviderError? {
        for (i, n) in (names ?? []).enumerated() where catalog.lookup(n) == nil {
            return ProviderError(.unknownModel, "unknown model '\(n)' in fallbacks", param: "fallbacks[\(i)]")
        }
        return nil
    }

    /// The model a request that names none gets: `CHAT_DEFAULT_MODEL`, else the catalog file's
    /// `default_model`, else its first available model; without a file, as before catalogs.
    var defaultModel: String {
        if let m = config.defaultModel { return m }
        if let m = catalog.defaultModel { return m }
        if catalog.source != "built-in", let first = catalog.models.first(where: { $0.isAvailable && $0.wildcardPrefix == nil }) {
            return first.name
        }
        return config.effectiveDefaultModel
    }

    func makeUpstream(_ request: ChatRequest, route: RoutedModel, delegate: UpstreamStreamDelegate) -> Result<UpstreamStream, ProviderError> {
        if route.deployment.kind == .mock {
            var req = request
            req.model = route.model
            if req.maxTokens == nil { req.maxTokens = route.defaults.maxTokens }
            do {
                return .success(MockProviderStream(loop: loop, plan: try MockModel.plan(for: req), delegate: delegate))
            } catch {
                return .failure(error)
            }
        }
        switch UpstreamRequests.build(request, route: route, defaults: generation) {
        case .failure(let e): return .failure(e)
        case .success(let upstreamRequest):
            guard let decoder = UpstreamRequests.makeStreamDecoder(for: route.deployment.kind) else {
                return .failure(ProviderError(.upstreamError, "no stream decoder for \(route.deployment.kind.rawValue)"))
            }
            let t = route.deployment.timeouts
            let limits = UpstreamTimeouts(connectMs: t.connectMs ?? timeouts.connectMs, firstTokenMs: t.firstTokenMs ?? timeouts.firstTokenMs,
                                          idleMs: t.idleMs ?? timeouts.idleMs)
            return .success(CurlProviderStream(multi: multi, request: upstreamRequest, provider: route.provider,
                                               decoder: decoder, timeouts: limits, delegate: delegate))
        }
    }

    /// Answers whose final write waits for the database to come back and that are in no journal
    /// (in memory only): a drain waits for them, not for journaled ones (the next start-up writes those).
    private(set) var unjournaledAnswerWrites = 0
    /// This worker's journal of answers waiting for the database; nil when `CHAT_JOURNAL_DIR=off`.
    var journal: AnswerJournal?

    /// Failures that end when the database is reachable again.
    static func isTransient(_ e: StoreError) -> Bool {
        guard case .database(let pg) = e else { return false }
        switch pg {
        case .connectFailed, .connectionLost, .timeout, .overloaded, .unavailable: return true
        case .server, .aborted, .closed, .client: return false
        }
    }

    /// The final write of `answer` failed because the database is away: the answer goes to the
    /// journal, and `next` (which sends the client's closing frame) runs once it is on disk there,
    /// so a client that got `done` holds an answer that survives a crash. Then the write is
    /// repeated until the database takes it.
    func keepUntilStored(_ answer: PendingAnswer, then next: @escaping () -> Void) {
        guard let journal else {
            storeLater(answer, journaled: false)
            next()
            return
        }
        journal.append(answer) { [self] durable in
            storeLater(answer, journaled: durable)
            next()
        }
    }

    /// Repeats the final write of `answer` with backoff (0.5 s doubling to 5 s, for about 10
    /// minutes; a replayed answer tries first after 0.25 s) until it lands. A journaled answer
    /// the database is still away for after that stays in the journal for the next start-up.
    func storeLater(_ answer: PendingAnswer, journaled: Bool, attempt: Int = 1) {
        if !journaled { unjournaledAnswerWrites += 1 }
        let delay = Int64(min(5_000, 250 << min(attempt, 5)))
        loop.schedule(afterMillis: delay) { [self] in
            answer.store(in: store) { [self] result in
                if !journaled { unjournaledAnswerWrites -= 1 }
                let id = answer.messageID
                switch result {
                case .success:
                    if journaled { journal?.answerStored() }
                    logger.info("answer stored after the database came back", [("message_id", .string(id)), ("attempts", .int(attempt + 1))])
                case .failure(let e) where ChatService.isTransient(e) && attempt < 130:
                    storeLater(answer, journaled: journaled, attempt: attempt + 1)
                case .failure(let e) where ChatService.isTransient(e) && journaled:
                    logger.error("the database is still away; the answer stays in the journal for the next start-up",
                                 [("message_id", .string(id)), ("error", .string(e.description))])
                case .failure(let e):
                    // Refused for good: writing it again at the next start-up would not help.
                    if journaled { journal?.answerStored() }
                    logger.error("could not store the answer", [("message_id", .string(id)), ("error", .string(e.description))])
                }
            }
        }
    }

    /// Start-up: the answers a gone process left in its journal, now in this worker's, are
    /// written as they would have been (finalized, or their whole turn stored again).
    func replay(_ answers: [PendingAnswer]) {
        for a in answers { storeLater(a, journaled: true, attempt: 0) }
    }

    func track(_ turn: ChatTurn) { turns[ObjectIdentifier(turn)] = turn }
    func turnFinished(_ turn: ChatTurn) { turns[ObjectIdentifier(turn)] = nil }

    /// End of the drain period: every turn still running ends with an error event and is stored.
    func abortAll(_ message: String) {
        for t in Array(turns.values) { t.abort(message) }
    }
}
