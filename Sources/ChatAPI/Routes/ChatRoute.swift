import HTTP
import JSONCore
import Providers
import Reactor
import Storage

/// POST /api/v1/chat: one turn of a stored conversation, streamed as ChatRelay SSE events.
extension ChatService {
    struct NativeChatBody {
        var message: String
        var model: String
        /// Several models answering this turn at once (instead of `model`).
        var models: [String]?
        var mode = RunMode.all
        var conversationID: String?
        /// A run of an earlier multi-model turn the history continues from.
        var continueFrom: String?
        var system: String?
        var temperature: Double?
        var maxTokens: Int?
        var fallbacks: [String]?
        /// This request's own disconnect policy, instead of `CHAT_ON_DISCONNECT`.
        var onDisconnect: Config.DisconnectPolicy?
        /// `"cache": {"ttl_s": N}` asks for the response cache; `"cache": false` refuses it.
        var cacheTTL: Int?
        var cacheRefused = false

        init(_ body: JSONValue, defaultModel: String, maxModels: Int) throws(ClientError) {
            let f = Fields(object: body)
            guard let m = try f.string("message", required: true), !m.isEmpty else {
                throw .invalid("message must not be empty", param: "message")
            }
            message = m
            let model = try f.string("model", maxBytes: ModelNames.maxBytes)
            self.model = model ?? defaultModel
            models = try f.modelNames("models", max: maxModels)
            if let models {
                guard model == nil else { throw .invalid("give either model or models, not both", param: "models") }
                guard !models.isEmpty else { throw .invalid("models must name at least one model", param: "models") }
            }
            if let s = try f.string("mode", maxBytes: 16) {
                guard let mode = RunMode(rawValue: s) else { throw .invalid("mode must be all or fastest", param: "mode") }
                guard models != nil else { throw .invalid("mode applies to a turn with models", param: "mode") }
                self.mode = mode
            }
            conversationID = try f.string("conversation_id", maxBytes: 64)
            if let c = conversationID, !isValidUUID(c) {
                throw .invalid("conversation_id must be a UUID", param: "conversation_id")
            }
            continueFrom = try f.string("continue_from", maxBytes: 64)
            if let c = continueFrom {
                guard isValidUUID(c) else { throw .invalid("continue_from must be a run id (a UUID)", param: "continue_from") }
                guard conversationID != nil else {
                    throw .invalid("continue_from needs the conversation_id it belongs to", param: "continue_from")
                }
            }
            system = try f.string("system")
            temperature = try f.double("temperature", 0...2)
            maxTokens = try f.int("max_tokens", 1...1_000_000)
            fallbacks = try f.modelNames("fallbacks")
            if fallbacks != nil && models != nil {
                throw .invalid("fallbacks apply to a single model; each of models falls back as its catalog entry says", param: "fallbacks")
            }
            if let c = body["cache"], !c.isNull {
                if c.bool == false {
                    cacheRefused = true
                } else {
                    guard c.object != nil, let ttl = try Fields(object: c).int("ttl_s", 1...CachePolicy.maxTTLSeconds) else {
                        throw .invalid("cache must be false or {\"ttl_s\": 1..\(CachePolicy.maxTTLSeconds)}", param: "cache")
                    }
                    cacheTTL = ttl
                }
                if models != nil { throw .invalid("cache applies to a turn with one model", param: "cache") }
            }
            if let p = try f.string("on_disconnect", maxBytes: 16) {
                guard let policy = Config.DisconnectPolicy(rawValue: p) else {
                    throw .invalid("on_disconnect must be continue or cancel", param: "on_disconnect")
                }
                onDisconnect = policy
            }
        }
    }

    /// The history a turn on `routes` sends: the configured budget, narrowed to the smallest
    /// context window the catalog knows among them (less the answer's own tokens), at about three
    /// characters a token — few languages pack more into a token, so the history fits.
    func historyBudget(for routes: [RoutedModel]) -> HistoryBudget {
        var characters = config.historyMaxCharacters
        for r in routes {
            guard let context = r.defaults.contextTokens else { continue }
            let answer = r.defaults.maxTokens ?? generation.maxTokens
            characters = min(characters, max(1_000, (context - answer) * Self.charactersPerToken))
        }
        return HistoryBudget(messages: config.historyMaxMessages, characters: characters)
    }

    static let charactersPerToken = 3

    /// Whether a request may share its answer (docs/API.md, "Response cache"): its own word
    /// (`Cache-Control`, the body's `cache`) or the catalog model's `cache_ttl_s`.
    func cachePolicy(_ req: HTTPRequest, bodyTTL: Int? = nil, refused: Bool = false, route: RoutedModel, caller: Caller,
                     temperature: Double?) -> CachePolicy? {
        var ask = CachePolicy.Ask(headers: req.head.headers)
        if let t = bodyTTL { ask.ttlSeconds = t }
        if refused { ask.noStore = true }
        // The key's setting, else the model's: both apply to deterministic requests only.
        let standing = caller.key?.record.limits.cacheTTLSeconds ?? route.defaults.cacheTTLSeconds
        return CachePolicy.decide(ask: ask, modelTTL: standing,
                                  temperature: temperature ?? route.defaults.temperature ?? generation.temperature)
    }

    func cancelsOnDisconnect(_ body: NativeChatBody) -> Bool {
        (body.onDisconnect ?? config.onDisconnect) == .cancel
    }

    func chat(_ req: HTTPRequest, _ r: HTTPResponder) {
        guard let caller = authorize(req, r, retry: { [self] in chat(req, r) }), let json = jsonBody(req, r) else { return }
        let body: NativeChatBody
        do { body = try NativeChatBody(json, defaultModel: defaultModel, maxModels: config.maxModelsPerTurn) } catch {
            r.respond(error)
            return
        }
        if body.models != nil { return chatWithModels(body, caller: caller, r) }
        let route: RoutedModel
        switch self.route(body.model) {
        case .failure(let e): return r.respond(e)
        case .success(let rt): route = rt
        }
        if let e = checkFallbacks(body.fallbacks) { return r.respond(e) }
        guard pool.isHealthy else { return databaseUnavailable(r) }
        admit(caller, r, shape: .native, model: route, fallbacks: body.fallbacks) { [self] admission in
            continueFrom(body, owner: caller.owner, r, release: [admission]) { [self] in
                let cache = cachePolicy(req, bodyTTL: body.cacheTTL, refused: body.cacheRefused, route: route, caller: caller,
                                        temperature: body.temperature)
                begin(body, route: route, caller: caller, admission: admission, cache: cache, r)
            }
        }
    }

    private func begin(_ body: NativeChatBody, route: RoutedModel, caller: Caller, admission: Admission, cache: CachePolicy?,
                       _ r: HTTPResponder) {
        let owner = caller.owner
        // The user message is stored (committed, visible) before the upstream call starts; it is
        // durable with the answer (see ChatStore.beginTurn).
        let databaseStartedAt = monotonicNanos()
        store.beginTurn(owner: owner, conversationID: body.conversationID, system: body.system, userText: body.message,
                        model: route.name, provider: route.deployment.kind.rawValue, deployment: route.deployment.id,
                        upstreamModel: route.model, history: historyBudget(for: [route])) { [self] result in
            (r.context as? RequestContext)?.timing.databaseNanos = monotonicNanos() &- databaseStartedAt
            switch result {
            case .failure(.notFound):
                keyLimiter.finished(admission, key: nil, tokens: 0, costPico: 0)
                r.respondError(status: 404, type: "not_found", message: "conversation not found", param: "conversation_id")
            case .failure(let e):
                keyLimiter.finished(admission, key: nil, tokens: 0, costPico: 0)
                logger.error("could not store the turn", [("error", .string(e.description))])
                databaseUnavailable(r)
            case .success(let start):
                guard r.isClientConnected else {
                    // The client left while we stored: nothing to stream to; the turn is closed as cancelled.
                    keyLimiter.finished(admission, key: nil, tokens: 0, costPico: 0)
                    store.finalizeAssistantMessage(owner: owner, id: start.assistantMessageID, text: "", status: .cancelled,
                                                   finishReason: nil, usage: nil, ttftMs: nil, latencyMs: nil, error: nil, turn: start) { _ in }
                    return
                }
                let system = start.conversation.systemPrompt ?? body.system
                let request = ChatRequest(model: route.model, system: system, messages: ChatService.history(start.history),
                                          maxTokens: body.maxTokens, temperature: body.temperature)
                let turn = ChatTurn(service: self, responder: r, wire: NativeWire(messageID: start.assistantMessageID), route: route, fallbacks: body.fallbacks,
                                    storage: TurnStorage(store: store, owner: owner, start: start), caller: caller,
                                    admission: admission, cancelOnDisconnect: cancelsOnDisconnect(body), cache: cache)
                track(turn)
                turn.start(request)
            }
        }
    }

    /// `continue_from`: the earlier run the history continues from is selected first (404 when it
    /// is not one of this conversation's runs); without it, `then` runs at once.
    func continueFrom(_ body: NativeChatBody, owner: String, _ r: HTTPResponder, release: [Admission],
                      then: @escaping () -> Void) {
        guard let run = body.continueFrom, let conversation = body.conversationID else { return then() }
        store.selectRun(owner: owner, conversationID: conversation, runID: run) { [self] result in
            switch result {
            case .success(.some): then()
            case .success(nil):
                for a in release { keyLimiter.finished(a, key: nil, tokens: 0, costPico: 0) }
                r.respondError(status: 404, type: "not_found", message: "run \(run) is not one of this conversation's", param: "continue_from")
            case .failure(let e):
                for a in release { keyLimiter.finished(a, key: nil, tokens: 0, costPico: 0) }
                logger.error("could not select the run", [("error", .string(e.description))])
                databaseUnavailable(r)
            }
        }
    }

    /// Stored messages as provider history: answers that produced no text are left out, and so
    /// is anything before the first user message (a history cut by its budget may start with an
    /// answer, which providers refuse).
    static func history(_ stored: [StoredMessage]) -> [ChatMessage] {
        let firstUser = stored.firstIndex { $0.role == .user } ?? stored.endIndex
        return stored[firstUser...].compactMap { m in
            if m.role == .assistant && m.content.isEmpty { return nil }
            let role: ChatRole = m.role == .user ? .user : (m.role == .assistant ? .assistant : .system)
            return ChatMessage(role: role, content: m.content)
        }
    }
}
