import HTTP
import Providers
import Reactor
import Storage

/// POST /api/v1/chat with `models`: one turn answered by several models at once, on one stream.
extension ChatService {
    func chatWithModels(_ body: NativeChatBody, caller: Caller, _ r: HTTPResponder) {
        var routes: [RoutedModel] = []
        for (i, name) in (body.models ?? []).enumerated() {
            switch route(name) {
            case .failure(let e):
                return r.respond(ProviderError(e.kind, e.message, param: "models[\(i)]"))
            case .success(let rt): routes.append(rt)
            }
        }
        guard pool.isHealthy else { return databaseUnavailable(r) }
        // Every run is a request of its own to the key's limits (and holds its own stream slot).
        admitRuns(caller, r, routes[...], admitted: []) { [self] admissions in
            continueFrom(body, owner: caller.owner, r, release: admissions) { [self] in
                beginRuns(body, routes: routes, caller: caller, admissions: admissions, r)
            }
        }
    }

    private func admitRuns(_ caller: Caller, _ r: HTTPResponder, _ routes: ArraySlice<RoutedModel>, admitted: [Admission],
                           then: @escaping ([Admission]) -> Void) {
        guard let next = routes.first else { return then(admitted) }
        admit(caller, r, shape: .native, model: next, fallbacks: nil, then: { [self] a in
            admitRuns(caller, r, routes.dropFirst(), admitted: admitted + [a], then: then)
        }, refused: { [self] in
            for a in admitted { keyLimiter.finished(a, key: nil, tokens: 0, costPico: 0) }
        })
    }

    private func beginRuns(_ body: NativeChatBody, routes: [RoutedModel], caller: Caller, admissions: [Admission],
                           _ r: HTTPResponder) {
        let openings = routes.map {
            RunOpening(model: $0.name, provider: $0.deployment.kind.rawValue, deployment: $0.deployment.id, upstreamModel: $0.model)
        }
        let release = { [self] in for a in admissions { keyLimiter.finished(a, key: nil, tokens: 0, costPico: 0) } }
        store.beginMultiTurn(owner: caller.owner, conversationID: body.conversationID, system: body.system,
                             userText: body.message, runs: openings, mode: body.mode,
                             history: historyBudget(for: routes)) { [self] result in
            switch result {
            case .failure(.notFound):
                release()
                r.respondError(status: 404, type: "not_found", message: "conversation not found", param: "conversation_id")
            case .failure(let e):
                release()
                logger.error("could not store the turn", [("error", .string(e.description))])
                databaseUnavailable(r)
            case .success(let start):
                let turn = MultiModelTurn(service: self, responder: r, start: start, mode: body.mode)
                let system = start.runs.first?.conversation.systemPrompt ?? body.system
                let history = ChatService.history(start.runs.first?.history ?? [])
                for (i, route) in routes.enumerated() {
                    let request = ChatRequest(model: route.model, system: system, messages: history,
                                              maxTokens: body.maxTokens, temperature: body.temperature)
                    turn.add(route: route, start: start.runs[i], request: request, caller: caller, admission: admissions[i],
                             cancelOnDisconnect: cancelsOnDisconnect(body))
                }
                turn.run()
            }
        }
    }
}
