import HTTP
import JSONCore
import Providers
import Reactor

/// Health and the model list.
extension ChatService {
    /// 200 when this instance can take work; 503 when its database is away or it is draining
    /// (load balancers and readiness probes then send new work elsewhere).
    func health(_ r: HTTPResponder, version: String, startedAt: UInt64, worker: Int, draining: Bool = false) {
        let dbOK = pool.isHealthy
        var w = JSONWriter()
        w.beginObject()
        w.field("status", draining ? "draining" : dbOK ? "ok" : "degraded")
        w.field("database", dbOK ? "ok" : "unavailable")
        w.field("version", version)
        w.field("uptime_s", Int((monotonicNanos() - startedAt) / 1_000_000_000))
        w.field("worker", worker)
        w.field("active_streams", activeTurns)
        w.endObject()
        r.respondJSON(status: dbOK && !draining ? 200 : 503, w.bytes)
    }

    /// Models a client can use here: the built-in mocks always, each configured provider's usual names.
    var configuredModels: [(id: String, provider: ProviderKind)] {
        var out: [(String, ProviderKind)] = [("mock-echo", .mock), ("mock-tokens-20", .mock)]
        if providers.isConfigured(.openai) { out += ["gpt-5.4-mini", "gpt-5.4", "gpt-4.1", "o3"].map { ($0, .openai) } }
        if providers.isConfigured(.anthropic) { out += ["claude-sonnet-4-6", "claude-opus-4-7", "claude-haiku-4-5"].map { ($0, .anthropic) } }
        if providers.isConfigured(.gemini) { out += ["gemini-2.5-flash", "gemini-2.5-pro"].map { ($0, .gemini) } }
        if let d = config.defaultModel, !out.contains(where: { $0.0 == d }), case .success(let r) = ModelRouter.route(model: d) {
            out.insert((d, r.provider), at: 0)
        }
        return out
    }

    func models(_ req: HTTPRequest, _ r: HTTPResponder) {
        guard authorize(req, r) != nil else { return }
        var w = JSONWriter()
        w.beginObject()
        w.field("default_model", config.effectiveDefaultModel)
        w.key("models")
        w.beginArray()
        for m in configuredModels {
            w.beginObject()
            w.field("id", m.id)
            w.field("provider", m.provider.rawValue)
            w.endObject()
        }
        w.endArray()
        w.key("providers")
        w.beginObject()
        for p in [ProviderKind.openai, .anthropic, .gemini] { w.field(p.rawValue, providers.isConfigured(p)) }
        w.field("mock", true)
        w.endObject()
        w.endObject()
        r.respondJSON(status: 200, w.bytes)
    }
}
