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
        var conversationID: String?
        var system: String?
        var temperature: Double?
        var maxTokens: Int?
        var fallbacks: [String]?

        init(_ body: JSONValue, defaultModel: String) throws(ClientError) {
            let f = Fields(object: body)
            guard let m = try f.string("message", required: true), !m.isEmpty else {
                throw .invalid("message must not be empty", param: "message")
            }
            message = m
            model = try f.string("model", maxBytes: ModelNames.maxBytes) ?? defaultModel
            conversationID = try f.string("conversation_id", maxBytes: 64)
            if let c = conversationID, !isValidUUID(c) {
                throw .invalid("conversation_id must be a UUID", param: "conversation_id")
            }
            system = try f.string("system")
            temperature = try f.double("temperature", 0...2)
            maxTokens = try f.int("max_tokens", 1...1_000_000)
            fallbacks = try f.modelNames("fallbacks")
        }
    }

    func chat(_ req: HTTPRequest, _ r: HTTPResponder) {
        guard let caller = authorize(req, r, retry: { [self] in chat(req, r) }), let json = jsonBody(req, r) else { return }
        let body: NativeChatBody
        do { body = try NativeChatBody(json, defaultModel: defaultModel) } catch {
            r.respond(error)
            return
        }
        let route: RoutedModel
        switch self.route(body.model) {
        case .failure(let e): return r.respond(e)
        case .success(let rt): route = rt
        }
        if let e = checkFallbacks(body.fallbacks) { return r.respond(e) }
        guard pool.isHealthy else { return databaseUnavailable(r) }
        admit(caller, r, shape: .native, model: route, fallbacks: body.fallbacks) { [self] admission in
            begin(body, route: route, caller: caller, admission: admission, r)
        }
    }

    private func begin(_ body: NativeChatBody, route: RoutedModel, caller: Caller, admission: Admission, _ r: HTTPResponder) {
        let owner = caller.owner
        // The user message is stored (committed, visible) before the upstream call starts; it is
        // durable with the answer (see ChatStore.beginTurn).
        let databaseStartedAt = monotonicNanos()
        store.beginTurn(owner: owner, conversationID: body.conversationID, system: body.system, userText: body.message,
                        model: route.name, provider: route.deployment.kind.rawValue, deployment: route.deployment.id,
                        upstreamModel: route.model) { [self] result in
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
                                    admission: admission, cancelOnDisconnect: config.onDisconnect == .cancel)
                track(turn)
                turn.start(request)
            }
        }
    }

    /// Stored messages as provider history: answers that produced no text are left out.
    static func history(_ stored: [StoredMessage]) -> [ChatMessage] {
        stored.compactMap { m in
            if m.role == .assistant && m.content.isEmpty { return nil }
            let role: ChatRole = m.role == .user ? .user : (m.role == .assistant ? .assistant : .system)
            return ChatMessage(role: role, content: m.content)
        }
    }
}
