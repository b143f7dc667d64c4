import HTTP
import Providers
import Reactor
import Storage

/// The turn flow the stateless surfaces (`/v1/chat/completions`, `/v1/messages`) share: without an
/// `X-Conversation-Id` header nothing is stored; with one (an id, or `new`) the turn is stored
/// like a `/api/v1/chat` turn and the conversation's id goes back in the same header. `system` is
/// worked out only for a stored turn.
extension ChatService {
    func startTurn(_ req: HTTPRequest, _ r: HTTPResponder, caller: Caller, wire: ClientWire, route: RoutedModel,
                   request: ChatRequest, fallbacks: [String]?, system: @escaping @autoclosure () -> String?, userText: String, shape: ErrorShape,
                   badConversationMessage: String) {
        admit(caller, r, shape: shape, model: route, fallbacks: fallbacks) { [self] admission in
            startAdmittedTurn(req, r, caller: caller, admission: admission, wire: wire, route: route, request: request, fallbacks: fallbacks,
                              system: system, userText: userText, shape: shape, badConversationMessage: badConversationMessage)
        }
    }

    private func startAdmittedTurn(_ req: HTTPRequest, _ r: HTTPResponder, caller: Caller, admission: Admission, wire: ClientWire,
                                   route: RoutedModel, request: ChatRequest, fallbacks: [String]?, system: () -> String?,
                                   userText: String, shape: ErrorShape, badConversationMessage: String) {
        let owner = caller.owner
        let cache = cachePolicy(req, route: route, caller: caller, temperature: request.temperature)
        guard let conversation = req.head.headers["X-Conversation-Id"]?.trimmingSpaces, !conversation.isEmpty else {
            let turn = ChatTurn(service: self, responder: r, wire: wire, route: route, fallbacks: fallbacks, storage: nil, caller: caller,
                                admission: admission, cancelOnDisconnect: true, cache: cache)
            track(turn)
            turn.start(request)
            return
        }
        let existing: String? = conversation.lowercased() == "new" ? nil : conversation
        if let existing, !isValidUUID(existing) {
            keyLimiter.finished(admission, key: nil, tokens: 0, costPico: 0)
            return r.respond(ClientError.invalid(badConversationMessage, param: "X-Conversation-Id"), shape: shape)
        }
        guard pool.isHealthy else {
            keyLimiter.finished(admission, key: nil, tokens: 0, costPico: 0)
            return databaseUnavailable(r, shape: shape)
        }
        let databaseStartedAt = monotonicNanos()
        store.beginTurn(owner: owner, conversationID: existing, system: system(), userText: userText,
                        model: route.name, provider: route.deployment.kind.rawValue, deployment: route.deployment.id,
                        upstreamModel: route.model, history: historyBudget(for: [route])) { [self] result in
            (r.context as? RequestContext)?.timing.databaseNanos = monotonicNanos() &- databaseStartedAt
            switch result {
            case .failure(.notFound):
                keyLimiter.finished(admission, key: nil, tokens: 0, costPico: 0)
                r.respond(ClientError(status: 404, type: "not_found", message: "conversation not found", param: "X-Conversation-Id"), shape: shape)
            case .failure(let e):
                keyLimiter.finished(admission, key: nil, tokens: 0, costPico: 0)
                logger.error("could not store the turn", [("error", .string(e.description))])
                databaseUnavailable(r, shape: shape)
            case .success(let start):
                r.extraHeaders.add("X-Conversation-Id", start.conversation.id)
                let turn = ChatTurn(service: self, responder: r, wire: wire, route: route, fallbacks: fallbacks,
                                    storage: TurnStorage(store: store, owner: owner, start: start), caller: caller,
                                    admission: admission, cancelOnDisconnect: config.onDisconnect == .cancel, cache: cache)
                track(turn)
                turn.start(request)
            }
        }
    }
}
