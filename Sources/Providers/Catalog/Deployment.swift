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
    /// Unique in the catalog; stored with every answer it produced.
    public var id: String
    public var kind: DeploymentKind
    /// Without a trailing slash. Empty for the in-process mock.
    public var baseURL: String
    /// The environment variable the key is read from; nil for a keyless (local) server.
    public var apiKeyEnv: String?
    /// The key read from `apiKeyEnv` when the catalog was loaded; nil when keyless or unset.
    public var apiKey: String?
    /// The upstream model id; nil sends the client's name (or a wildcard's matched part).
    public var model: String?
    public var weight: Int
    public var maxConcurrent: Int?
    /// Requests and tokens per minute the provider allows this deployment, across every instance
    /// (a deployment at its limit is skipped like one whose breaker is open).
    public var rpm: Int?
    public var tpm: Int?
    public var timeouts: DeploymentTimeouts
    /// Sent with every request to this deployment, after the auth header.
    public var headers: [(String, String)]
    public var price: Price?
    /// Azure's `api-version` query value, or Anthropic's `anthropic-version` header.
    public var apiVersion: String?
    /// Ask for the final usage chunk (`stream_options.include_usage`); some OpenAI-compatible
    /// servers reject the field.
    public var includeUsage: Bool
    /// Where the deployment was defined, for messages (0 for built-in ones).
    public var line: Int
    /// Streams in flight and the circuit breaker, shared by every worker; kept across reloads
    /// for a deployment whose id and breaker settings stay the same.
    public var health: DeploymentHealth

    public init(id: String, kind: DeploymentKind, baseURL: String, apiKeyEnv: String? = nil, apiKey: String? = nil,
                model: String? = nil, weight: Int = 1, maxConcurrent: Int? = nil, timeouts: DeploymentTimeouts = DeploymentTimeouts(),
                headers: [(String, String)] = [], price: Price? = nil, apiVersion: String? = nil, includeUsage: Bool = true, line: Int = 0,
                health: DeploymentHealth = DeploymentHealth()) {
        self.id = id
        self.kind = kind
        self.baseURL = baseURL
        self.apiKeyEnv = apiKeyEnv
        self.apiKey = apiKey
        self.model = model
        self.weight = weight
        self.maxConcurrent = maxConcurrent
        self.timeouts = timeouts
        self.headers = headers
        self.price = price
        self.apiVersion = apiVersion
        self.includeUsage = includeUsage
        self.line = line
        self.health = health
    }

    /// False when the deployment names a key variable that was unset (or empty) at load.
    public var hasKey: Bool { apiKeyEnv == nil || apiKey != nil }
}
