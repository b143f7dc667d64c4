/// What a request leaves unset and the server fills in (`MAX_TOKENS`, `TEMPERATURE`).
public struct GenerationDefaults: Sendable, Equatable {
    /// Anthropic requires a `max_tokens`; the others get it too, so answers are bounded alike.
    public var maxTokens: Int
    /// Still dropped where a model rejects it.
    public var temperature: Double?

    public init(maxTokens: Int = 1024, temperature: Double? = nil) {
        self.maxTokens = maxTokens
        self.temperature = temperature
    }
}

/// The provider settings of the environment (README.md, Configuration): one key and one base URL
/// per provider. They make the built-in catalog when no `models.yaml` is given. Timeouts live
/// with the transport, not here.
public struct ProviderConfig: Sendable, Equatable {
    public var openAIKey: String?
    public var anthropicKey: String?
    public var googleKey: String?
    /// Includes `/v1`, as the official SDK reads `OPENAI_BASE_URL`.
    public var openAIBaseURL: String
    public var anthropicBaseURL: String
    /// Includes the API version path (`/v1beta`).
    public var geminiBaseURL: String
    public var anthropicVersion: String
    /// Used when a request names no `max_tokens` (Anthropic requires one).
    public var defaultMaxTokens: Int
    /// Used when a request names no temperature; still dropped where a model rejects it.
    public var defaultTemperature: Double?

    public static let defaultOpenAIBaseURL = "https://api.openai.com/v1"
    public static let defaultAnthropicBaseURL = "https://api.anthropic.com"
    public static let defaultGeminiBaseURL = "https://generativelanguage.googleapis.com/v1beta"
    public static let defaultAnthropicVersion = "2026-10-21"

    public init(openAIKey: String? = nil, anthropicKey: String? = nil, googleKey: String? = nil,
                openAIBaseURL: String = defaultOpenAIBaseURL, anthropicBaseURL: String = defaultAnthropicBaseURL,
                geminiBaseURL: String = defaultGeminiBaseURL, anthropicVersion: String = defaultAnthropicVersion,
                defaultMaxTokens: Int = 1024, defaultTemperature: Double? = nil) {
        self.openAIKey = openAIKey
        self.anthropicKey = anthropicKey
        self.googleKey = googleKey
        self.openAIBaseURL = openAIBaseURL
        self.anthropicBaseURL = anthropicBaseURL
        self.geminiBaseURL = geminiBaseURL
        self.anthropicVersion = anthropicVersion
        self.defaultMaxTokens = defaultMaxTokens
        self.defaultTemperature = defaultTemperature
    }

    /// The key for `provider`, treating an empty string as unset (a blank env var is a common slip).
    public func key(for provider: ProviderKind) -> String? {
        let key: String?
        switch provider {
        case .openai: key = openAIKey
        case .anthropic: key = anthropicKey
        case .gemini: key = googleKey
        case .mock: return ""
        }
        guard let key, !key.isEmpty else { return nil }
        return key
    }

    /// True when requests for `provider` can be served.
    public func isConfigured(_ provider: ProviderKind) -> Bool { key(for: provider) != nil }

    public var generation: GenerationDefaults { GenerationDefaults(maxTokens: defaultMaxTokens, temperature: defaultTemperature) }
}
