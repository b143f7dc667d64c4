import HTTP
import JSONCore
import Providers

/// Before a turn starts: the caller's key may use the model, and its limits have room.
extension ChatService {
    /// Runs `then` with the turn's admission, or answers the refusal (403, 429 with its headers,
    /// 503 when the database that keeps the counts is away). A key without limits is admitted at
    /// once, with no database work.
    /// `refused` runs when `then` will not (the request was answered, or its client left): a turn
    /// of several models gives back the admissions of the models before it.
    func admit(_ caller: Caller, _ r: HTTPResponder, shape: ErrorShape, model: RoutedModel, fallbacks: [String]?,
               then: @escaping (Admission) -> Void, refused: @escaping () -> Void = {}) {
        if let allowed = caller.limits?.models {
            let names = [model.name] + (fallbacks ?? [])
            for (i, name) in names.enumerated() where !isAllowed(name, allowed) {
                let param = i == 0 ? "model" : "fallbacks[\(i - 1)]"
                refused()
                return r.respond(ClientError(status: 403, type: "permission_denied", message: "this API key may not use model '\(name)'",
                                             param: param), shape: shape)
            }
        }
        let limited = limitedDeploymentModels(model, fallbacks: fallbacks)
        guard !limited.isEmpty else { return admitKey(caller, r, shape: shape, then: then, refused: refused) }
        deploymentLimits.prepare(limited) { [self] in admitKey(caller, r, shape: shape, then: then, refused: refused) }
    }

    /// The catalog models this turn may use that have a deployment with its own rpm or tpm.
    private func limitedDeploymentModels(_ model: RoutedModel, fallbacks: [String]?) -> [CatalogModel] {
        guard catalog.hasDeploymentLimits else { return [] }
        var out: [CatalogModel] = []
        if let e = model.entry, e.deployments.contains(where: { $0.rpm != nil || $0.tpm != nil }) { out.append(e) }
        for name in fallbacks ?? model.resilience.fallbacks {
            if let e = catalog.lookup(name), e.deployments.contains(where: { $0.rpm != nil || $0.tpm != nil }) { out.append(e) }
        }
        return out
    }

    private func admitKey(_ caller: Caller, _ r: HTTPResponder, shape: ErrorShape, then: @escaping (Admission) -> Void,
                          refused: @escaping () -> Void) {
        guard let key = caller.key, !key.record.limits.isUnlimited else { return then(Admission(streamSubject: nil)) }
        // Answered before `admit` returns: decided from this worker's copies, no database wait.
        var synchronous = true
        defer { synchronous = false }
        keyLimiter.admit(key) { [self] outcome in
            if synchronous { limitMetrics.admittedLocally() } else { limitMetrics.admittedAfterDatabase() }
            switch outcome {
            case .admitted(let admission):
                guard r.isClientConnected else {
                    keyLimiter.finished(admission, key: nil, tokens: 0, costPico: 0)
                    return refused()
                }
                RateLimitHeaders.add(to: &r.extraHeaders, key: key, limiter: keyLimiter, openAI: shape == .openAI)
                then(admission)
            case .unavailable:
                refused()
                databaseUnavailable(r, shape: shape)
            case .refused(let refusal):
                refused()
                refuse(refusal, key: caller, r, shape: shape)
            }
        }
    }

    /// A public name is allowed when it, or the catalog entry (a wildcard) it resolves to, is listed.
    private func isAllowed(_ name: String, _ allowed: [String]) -> Bool {
        if allowed.contains(name) { return true }
        guard let entry = catalog.lookup(name) else { return false }
        return allowed.contains(entry.name)
    }

    private func refuse(_ refusal: LimitRefusal, key caller: Caller, _ r: HTTPResponder, shape: ErrorShape) {
        (r.context as? RequestContext)?.error = "rate_limited"
        limitMetrics.refused(refusal.kind)
        var h = HTTPHeaders()
        h.add("Retry-After", String(KeyLimiter.seconds(refusal.resetMs)))
        if let key = caller.key {
            RateLimitHeaders.add(to: &h, key: key, limiter: keyLimiter, openAI: shape == .openAI, refusal: refusal)
        }
        switch shape {
        case .openAI:
            // OpenAI's own: `type` names the limit, `code` says what happened.
            let type = refusal.kind == .budget ? "insufficient_quota" : refusal.kind.rawValue
            let code = refusal.kind == .budget ? "insufficient_quota" : "rate_limit_exceeded"
            r.respondJSON(status: 429, OpenAIWire.errorBody(refusal.message, type: type, param: nil, code: code), headers: h)
        case .native, .anthropic:
            let type = refusal.kind == .budget ? "budget_exceeded" : "rate_limited"
            r.respond(ClientError(status: 429, type: type, message: refusal.message, param: nil), shape: shape, headers: h)
        }
    }
}
