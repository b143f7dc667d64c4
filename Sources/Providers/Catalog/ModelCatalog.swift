/// Every public model name this gateway serves, and how to reach it (docs/catalog.md). Immutable:
/// a reload builds a new catalog and each worker swaps its reference, so a turn keeps the
/// deployment it started with.
public final class ModelCatalog: Sendable {
    /// In file order (the model listing's order).
    public let models: [CatalogModel]
    /// Where it came from: a file path, or `built-in`.
    public let source: String
    /// Counts successful loads in this process, starting at 1.
    public let version: Int
    /// The catalog's own `default_model`, if it names one.
    public let defaultModel: String?
    private let exact: [String: Int]
    /// Indices of wildcard models, longest prefix first, so the most specific pattern wins.
    private let wildcards: [Int]
    /// Some deployment has its own `rpm` or `tpm`: only then does a turn look for them.
    public let hasDeploymentLimits: Bool

    public init(models: [CatalogModel], source: String, version: Int = 1, defaultModel: String? = nil) {
        self.models = models
        self.source = source
        self.version = version
        self.defaultModel = defaultModel
        var exact: [String: Int] = [:]
        var wild: [Int] = []
        for (i, m) in models.enumerated() {
            if m.wildcardPrefix != nil { wild.append(i) } else if exact[m.name] == nil { exact[m.name] = i }
        }
        self.exact = exact
        wildcards = wild.sorted { models[$0].name.utf8.count > models[$1].name.utf8.count }
        hasDeploymentLimits = models.contains { $0.deployments.contains { $0.rpm != nil || $0.tpm != nil } }
    }

    /// The same models under a new version number (a reload of identical content still counts).
    public func withVersion(_ v: Int) -> ModelCatalog {
        ModelCatalog(models: models, source: source, version: v, defaultModel: defaultModel)
    }

    /// The catalog entry for a client's model name: an exact name first, then the longest wildcard.
    public func lookup(_ name: String) -> CatalogModel? {
        if let i = exact[name] { return models[i] }
        for i in wildcards {
            guard let prefix = models[i].wildcardPrefix else { continue }
            if name.utf8.count > prefix.utf8.count && name.utf8.starts(with: prefix.utf8) { return models[i] }
        }
        return nil
    }

    /// Resolves `name` to one deployment, weighted among those with their keys. `random` is
    /// consulted only when there is a choice to make.
    public func route(_ name: String, random: () -> UInt64) -> Result<RoutedModel, ProviderError> {
        // The name reaches logs, storage and (for Gemini) a URL path: allow what real ids use.
        guard !name.isEmpty, name.utf8.count <= ModelNames.maxBytes, name.utf8.allSatisfy(ModelNames.isPublicNameByte) else {
            return .failure(ModelCatalog.unknown(name))
        }
        guard let entry = lookup(name) else { return .failure(ModelCatalog.unknown(name)) }
        guard let deployment = ModelCatalog.pick(entry.deployments, random: random) else {
            let vars = entry.missingKeyVariables
            let ids = entry.deployments.map { "'\($0.id)'" }.joined(separator: ", ")
            return .failure(ProviderError(.providerNotConfigured,
                                          "model '\(name)' is unavailable: set \(vars.joined(separator: " or ")) (deployment \(ids))",
                                          param: "model"))
        }
        guard let routed = ModelCatalog.routed(name, entry: entry, deployment: deployment) else { return .failure(ModelCatalog.unknown(name)) }
        return .success(routed)
    }

    /// `name` on one of `entry`'s deployments, or nil when the upstream id would be invalid.
    public static func routed(_ name: String, entry: CatalogModel, deployment: Deployment) -> RoutedModel? {
        let upstream = deployment.model.map { Substring($0) } ?? entry.upstreamID(for: name)
        guard ModelNames.isValidUpstreamID(upstream, for: deployment.kind) else { return nil }
        return RoutedModel(name: name, deployment: deployment, model: String(upstream), defaults: entry.defaults,
                           resilience: entry.resilience, entry: entry)
    }

    /// The same catalog with the live state (streams in flight, breakers) of `old`'s deployments
    /// carried over where the id and breaker settings are unchanged, so a reload neither forgets
    /// an open breaker nor miscounts streams under way.
    public func adoptingHealth(from old: ModelCatalog) -> ModelCatalog {
        var previous: [String: DeploymentHealth] = [:]
        for m in old.models { for d in m.deployments { previous[d.id] = d.health } }
        let models = self.models.map { m -> CatalogModel in
            var m = m
            m.deployments = m.deployments.map { d in
                var d = d
                if let h = previous[d.id], h.policy == d.health.policy { d.health = h }
                return d
            }
            return m
        }
        return ModelCatalog(models: models, source: source, version: version, defaultModel: defaultModel)
    }

    /// Weighted choice among the deployments that have their keys.
    static func pick(_ deployments: [Deployment], random: () -> UInt64) -> Deployment? {
        var total = 0
        var only: Deployment?
        var count = 0
        for d in deployments where d.hasKey && d.weight > 0 {
            total += d.weight
            only = d
            count += 1
        }
        guard count > 1 else { return only }
        var r = Int(random() % UInt64(total))
        for d in deployments where d.hasKey && d.weight > 0 {
            if r < d.weight { return d }
            r -= d.weight
        }
        return only
    }

    static func unknown(_ model: String) -> ProviderError {
        ProviderError(.unknownModel, "unknown model '\(model)'", param: "model")
    }
}

/// Which characters model names may hold.
public enum ModelNames {
    public static let maxBytes = 256

    /// Letters, digits and `-._/:@+`: enough for `openai/gpt-5.4`, `llama3.3:70b`,
    /// `meta-llama/Llama-3.3-70B-Instruct`; no spaces, quotes or control characters.
    public static func isPublicNameByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: "@"),
             UInt8(ascii: "+"):
            return true
        default:
            return false
        }
    }

    /// Gemini puts the id in the URL path before `:streamGenerateContent`, so no `/`, `:` or `..`
    /// there; the other kinds carry it in the JSON body.
    public static func isValidUpstreamID<S: StringProtocol>(_ id: S, for kind: DeploymentKind) -> Bool {
        guard !id.isEmpty, id.utf8.count <= maxBytes, id.utf8.allSatisfy(isPublicNameByte) else { return false }
        if kind == .gemini {
            return id.utf8.allSatisfy { $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: ":") && $0 != UInt8(ascii: "@") && $0 != UInt8(ascii: "+") }
                && !id.contains("..")
        }
        return true
    }
}
