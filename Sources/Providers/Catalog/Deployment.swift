/// USD per million tokens, as providers publish their prices.
public struct Price: Sendable, Equatable {
    public var inputPerMTok: Double
    public var outputPerMTok: Double

    public init(inputPerMTok: Double, outputPerMTok: Double) {
        self.inputPerMTok = inputPerMTok
        self.outputPerMTok = outputPerMTok
    }
}

/// A deployment's own time limits; nil keeps the server-wide setting.
public struct DeploymentTimeouts: Sendable, Equatable {
    public var connectMs: Int?
    public var firstTokenMs: Int?
    public var idleMs: Int?

    public init(connectMs: Int? = nil, firstTokenMs: Int? = nil, idleMs: Int? = nil) {
        self.connectMs = connectMs
        self.firstTokenMs = firstTokenMs
        self.idleMs = idleMs
    }
}

/// One place a model can be served from: a provider endpoint with its key, upstream model id and
/// limits. Immutable once loaded; a turn keeps the value it started with across catalog reloads.
public struct Deployment: Sendable {
    /// The fields, in one shared box (Sources/Providers/Catalog/SharedValue.swift): the catalog's
    /// entries and every routed model of a turn refer to the same deployment.
    private struct Fields: Sendable {
        var id: String
        var kind: DeploymentKind
        var baseURL: String
        var apiKeyEnv: String?
        var apiKey: String?
        var model: String?
        var weight: Int
        var maxConcurrent: Int?
        var rpm: Int?
        var tpm: Int?
        var timeouts: DeploymentTimeouts
        var headers: [(String, String)]
        var price: Price?
        var apiVersion: String?
        var includeUsage: Bool
        var line: Int
        var health: DeploymentHealth
    }

    private var box: SharedValue<Fields>

    private mutating func update(_ change: (inout Fields) -> Void) { box = box.updated(change) }

    /// Unique in the catalog; stored with every answer it produced.
    public var id: String {
        get { box.value.id }
        set { update { $0.id = newValue } }
    }
    public var kind: DeploymentKind {
        get { box.value.kind }
        set { update { $0.kind = newValue } }
    }
    /// Without a trailing slash. Empty for the in-process mock.
    public var baseURL: String {
        get { box.value.baseURL }
        set { update { $0.baseURL = newValue } }
    }
    /// The environment variable the key is read from; nil for a keyless (local) server.
    public var apiKeyEnv: String? {
        get { box.value.apiKeyEnv }
        set { update { $0.apiKeyEnv = newValue } }
    }
    /// The key read from `apiKeyEnv` when the catalog was loaded; nil when keyless or unset.
    public var apiKey: String? {
        get { box.value.apiKey }
        set { update { $0.apiKey = newValue } }
    }
    /// The upstream model id; nil sends the client's name (or a wildcard's matched part).
    public var model: String? {
        get { box.value.model }
        set { update { $0.model = newValue } }
    }
    public var weight: Int {
        get { box.value.weight }
        set { update { $0.weight = newValue } }
    }
    public var maxConcurrent: Int? {
        get { box.value.maxConcurrent }
        set { update { $0.maxConcurrent = newValue } }
    }
    /// Requests and tokens per minute the provider allows this deployment, across every instance
    /// (a deployment at its limit is skipped like one whose breaker is open).
    public var rpm: Int? {
        get { box.value.rpm }
        set { update { $0.rpm = newValue } }
    }
    public var tpm: Int? {
        get { box.value.tpm }
        set { update { $0.tpm = newValue } }
    }
    public var timeouts: DeploymentTimeouts {
        get { box.value.timeouts }
        set { update { $0.timeouts = newValue } }
    }
    /// Sent with every request to this deployment, after the auth header.
    public var headers: [(String, String)] {
        get { box.value.headers }
        set { update { $0.headers = newValue } }
    }
    public var price: Price? {
        get { box.value.price }
        set { update { $0.price = newValue } }
    }
    /// Azure's `api-version` query value, or Anthropic's `anthropic-version` header.
    public var apiVersion: String? {
        get { box.value.apiVersion }
        set { update { $0.apiVersion = newValue } }
    }
    /// Ask for the final usage chunk (`stream_options.include_usage`); some OpenAI-compatible
    /// servers reject the field.
    public var includeUsage: Bool {
        get { box.value.includeUsage }
        set { update { $0.includeUsage = newValue } }
    }
    /// Where the deployment was defined, for messages (0 for built-in ones).
    public var line: Int {
        get { box.value.line }
        set { update { $0.line = newValue } }
    }
    /// Streams in flight and the circuit breaker, shared by every worker; kept across reloads
    /// for a deployment whose id and breaker settings stay the same.
    public var health: DeploymentHealth {
        get { box.value.health }
        set { update { $0.health = newValue } }
    }

    public init(id: String, kind: DeploymentKind, baseURL: String, apiKeyEnv: String? = nil, apiKey: String? = nil,
                model: String? = nil, weight: Int = 1, maxConcurrent: Int? = nil, timeouts: DeploymentTimeouts = DeploymentTimeouts(),
                headers: [(String, String)] = [], price: Price? = nil, apiVersion: String? = nil, includeUsage: Bool = true, line: Int = 0,
                health: DeploymentHealth = DeploymentHealth()) {
        box = SharedValue(Fields(id: id, kind: kind, baseURL: baseURL, apiKeyEnv: apiKeyEnv, apiKey: apiKey, model: model,
                                 weight: weight, maxConcurrent: maxConcurrent, rpm: nil, tpm: nil, timeouts: timeouts,
                                 headers: headers, price: price, apiVersion: apiVersion, includeUsage: includeUsage,
                                 line: line, health: health))
    }

    /// False when the deployment names a key variable that was unset (or empty) at load.
    public var hasKey: Bool { apiKeyEnv == nil || apiKey != nil }
}
