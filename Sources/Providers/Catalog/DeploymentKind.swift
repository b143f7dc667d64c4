/// What a catalog deployment speaks and how it authenticates (docs/catalog.md). Several kinds
/// share one wire family: Azure OpenAI and OpenAI-compatible servers stream OpenAI's chunks.
public enum DeploymentKind: String, Sendable, Equatable, CaseIterable {
    case openai, anthropic, gemini
    case azureOpenAI = "azure-openai"
    case openAICompatible = "openai-compatible"
    case mock

    /// The stream format and error shape the deployment answers with.
    public var wire: ProviderKind {
        switch self {
        case .openai, .azureOpenAI, .openAICompatible: return .openai
        case .anthropic: return .anthropic
        case .gemini: return .gemini
        case .mock: return .mock
        }
    }

    /// The provider's public endpoint, for the kinds that have one; the others must name theirs.
    public var defaultBaseURL: String? {
        switch self {
        case .openai: return ProviderConfig.defaultOpenAIBaseURL
        case .anthropic: return ProviderConfig.defaultAnthropicBaseURL
        case .gemini: return ProviderConfig.defaultGeminiBaseURL
        case .azureOpenAI, .openAICompatible, .mock: return nil
        }
    }
}

/// The wire families the gateway decodes: stream framing, chunk shapes and error bodies.
public enum ProviderKind: String, Sendable, Equatable, CaseIterable {
    case openai, anthropic, gemini, mock
}
