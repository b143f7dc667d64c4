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

    /// One row of the model list: never a key or a base URL, only whether the key is there.
    struct ListedModel {
        var id: String
        var kind: DeploymentKind
        var available: Bool
        var wildcard: Bool
        var missingKeys: [String]
    }

    /// The catalog's public names in file order, with the default model first when only a
    /// wildcard serves it (so a client's picker shows it).
    var listedModels: [ListedModel] {
        var out = catalog.models.filter(\.listed).map {
            ListedModel(id: $0.name, kind: $0.kind, available: $0.isAvailable, wildcard: $0.wildcardPrefix != nil,
                        missingKeys: $0.isAvailable ? [] : $0.missingKeyVariables)
        }
        let d = defaultModel
        if !out.contains(where: { $0.id == d }), let m = catalog.lookup(d) {
            out.insert(ListedModel(id: d, kind: m.kind, available: m.isAvailable, wildcard: false,
                                   missingKeys: m.isAvailable ? [] : m.missingKeyVariables), at: 0)
        }
        return out
    }

    func models(_ req: HTTPRequest, _ r: HTTPResponder) {
        guard authorize(req, r, retry: { [self] in models(req, r) }) != nil else { return }
        let list = listedModels
        var w = JSONWriter()
        w.beginObject()
        w.field("default_model", defaultModel)
        w.key("catalog")
        w.beginObject()
        w.field("version", catalog.version)
        w.field("source", catalog.source == "built-in" ? "built-in" : "file")
        w.endObject()
        w.key("models")
        w.beginArray()
        for m in list {
            w.beginObject()
            w.field("id", m.id)
            w.field("provider", m.kind.rawValue)
            w.field("available", m.available)
            if m.wildcard { w.field("wildcard", true) }
            if !m.missingKeys.isEmpty {
                w.key("missing_keys")
                w.beginArray()
                for k in m.missingKeys { w.string(k) }
                w.endArray()
            }
            w.endObject()
        }
        w.endArray()
        // Per provider kind in the catalog: whether any of its deployments has its key.
        w.key("providers")
        w.beginObject()
        for kind in DeploymentKind.allCases {
            let deployments = catalog.models.flatMap(\.deployments).filter { $0.kind == kind }
            if !deployments.isEmpty { w.field(kind.rawValue, deployments.contains(where: \.hasKey)) }
        }
        w.endObject()
        w.endObject()
        r.respondJSON(status: 200, w.bytes)
    }
}
