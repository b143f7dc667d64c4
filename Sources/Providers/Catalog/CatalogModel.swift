/// Defaults a catalog model applies to requests that do not set them.
public struct ModelDefaults: Sendable, Equatable {
    public var maxTokens: Int?
    public var temperature: Double?
    public var system: String?
    /// `cache_ttl_s`: deterministic requests (temperature 0) to this model are answered from the
    /// response cache, and kept this long.
    public var cacheTTLSeconds: Int?
    /// `context_tokens`: the model's context window, which bounds the history a turn sends.
    public var contextTokens: Int?

    public init(maxTokens: Int? = nil, temperature: Double? = nil, system: String? = nil, cacheTTLSeconds: Int? = nil,
                contextTokens: Int? = nil) {
        self.cacheTTLSeconds = cacheTTLSeconds
        self.contextTokens = contextTokens
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.system = system
    }
}

/// What a model does when a deployment fails (docs/resilience.md).
public struct ModelResilience: Sendable, Equatable {
    /// Models tried, in order, once this model's deployments are spent.
    public var fallbacks: [String] = []
    public var retry = RetryPolicy()
    /// After the first token: start again on the next deployment (announced with a `restart`
    /// event on /api/v1/chat) instead of ending with the error.
    public var restartMidstream = false
    /// Start the same turn on a second deployment when no token has come after this long.
    public var hedgeAfterMs: Int?
    /// `routing: ordered`: deployments in catalog order (first usable wins) instead of by weight and load.
    public var ordered = false

    public init() {}
}

/// A public model name and the deployments that serve it.
public struct CatalogModel: Sendable {
    /// The fields, in one shared box (Sources/Providers/Catalog/SharedValue.swift): a turn's plan
    /// and its routed model keep this entry for the whole stream.
    private struct Fields: Sendable {
        var name: String
        var deployments: [Deployment]
        var defaults: ModelDefaults
        var resilience: ModelResilience
        var line: Int
        var listed: Bool
    }

    private var box: SharedValue<Fields>

    private mutating func update(_ change: (inout Fields) -> Void) { box = box.updated(change) }

    /// As written in the catalog: `chat-fast`, or a wildcard such as `openai/*` or `gpt-*`.
    public var name: String {
        get { box.value.name }
        set { update { $0.name = newValue } }
    }
    public var deployments: [Deployment] {
        get { box.value.deployments }
        set { update { $0.deployments = newValue } }
    }
    public var defaults: ModelDefaults {
        get { box.value.defaults }
        set { update { $0.defaults = newValue } }
    }
    public var resilience: ModelResilience {
        get { box.value.resilience }
        set { update { $0.resilience = newValue } }
    }
    public var line: Int {
        get { box.value.line }
        set { update { $0.line = newValue } }
    }
    /// Shown in model listings. The built-in catalog hides its prefix patterns (`o3*`, `models/gemini-*`),
    /// which route but would only clutter a client's model picker.
    public var listed: Bool {
        get { box.value.listed }
        set { update { $0.listed = newValue } }
    }

    public init(name: String, deployments: [Deployment], defaults: ModelDefaults = ModelDefaults(),
                resilience: ModelResilience = ModelResilience(), line: Int = 0, listed: Bool = true) {
        box = SharedValue(Fields(name: name, deployments: deployments, defaults: defaults, resilience: resilience,
                                 line: line, listed: listed))
    }

    /// The kind shown for the model: its first deployment that has a key, else its first.
    public var kind: DeploymentKind {
        (deployments.first(where: \.hasKey) ?? deployments.first)?.kind ?? .mock
    }

    /// For a wildcard (`…*`), what a client's name must start with.
    public var wildcardPrefix: Substring? {
        name.hasSuffix("*") ? name.dropLast() : nil
    }

    /// True when at least one deployment has its key.
    public var isAvailable: Bool { deployments.contains(where: \.hasKey) }

    /// The key variables this model waits for, in file order, without repeats.
    public var missingKeyVariables: [String] {
        var out: [String] = []
        for d in deployments where !d.hasKey {
            if let v = d.apiKeyEnv, !out.contains(v) { out.append(v) }
        }
        return out
    }

    /// The upstream id a deployment without its own `model` receives: the client's name, less a
    /// wildcard's leading path (`openai/gpt-5.4` → `gpt-5.4`; `gpt-*` keeps `gpt-5.4` whole).
    func upstreamID(for requested: String) -> Substring {
        guard let prefix = wildcardPrefix, let slash = prefix.utf8.lastIndex(of: UInt8(ascii: "/")) else {
            return Substring(requested)
        }
        let cut = prefix.utf8.distance(from: prefix.utf8.startIndex, to: slash) + 1
        return Substring(requested.utf8.dropFirst(cut))
    }
}

/// A model name resolved to the deployment that will serve this turn.
public struct RoutedModel: Sendable {
    /// The fields, in one shared box (Sources/Providers/Catalog/SharedValue.swift): the turn, its
    /// resilient upstream, each attempt and a shared answer all hold the route for the whole
    /// stream, and each copy is now one retain.
    private struct Fields: Sendable {
        var name: String
        var deployment: Deployment
        var model: String
        var defaults: ModelDefaults
        var resilience: ModelResilience
        var entry: CatalogModel?
    }

    private var box: SharedValue<Fields>

    private mutating func update(_ change: (inout Fields) -> Void) { box = box.updated(change) }

    /// The public name the client sent.
    public var name: String {
        get { box.value.name }
        set { update { $0.name = newValue } }
    }
    public var deployment: Deployment {
        get { box.value.deployment }
        set { update { $0.deployment = newValue } }
    }
    /// The id sent upstream.
    public var model: String {
        get { box.value.model }
        set { update { $0.model = newValue } }
    }
    public var defaults: ModelDefaults {
        get { box.value.defaults }
        set { update { $0.defaults = newValue } }
    }
    public var resilience: ModelResilience {
        get { box.value.resilience }
        set { update { $0.resilience = newValue } }
    }
    /// The catalog entry this route was resolved from (its other deployments, for failover).
    public var entry: CatalogModel? {
        get { box.value.entry }
        set { update { $0.entry = newValue } }
    }

    public init(name: String, deployment: Deployment, model: String, defaults: ModelDefaults = ModelDefaults(),
                resilience: ModelResilience = ModelResilience(), entry: CatalogModel? = nil) {
        box = SharedValue(Fields(name: name, deployment: deployment, model: model, defaults: defaults,
                                 resilience: resilience, entry: entry))
    }

    /// The wire family: which decoder and error shape apply.
    public var provider: ProviderKind { deployment.kind.wire }
}
