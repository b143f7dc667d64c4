/// The upstream families the gateway can talk to.
public enum ProviderKind: String, Sendable, Equatable, CaseIterable {
    case openai, anthropic, gemini, mock
}

/// A model name resolved to its provider; `model` is the id to send upstream.
public struct RoutedModel: Sendable, Equatable {
    public var provider: ProviderKind
    public var model: String

    public init(provider: ProviderKind, model: String) {
        self.provider = provider
        self.model = model
    }
}

/// Picks the provider from the model name alone (api.md, wire-formats §5).
public enum ModelRouter {
    public static func route(model: String) -> Result<RoutedModel, ProviderError> {
        let name = model.hasPrefix("models/gemini-") ? String(model.dropFirst("models/".count)) : model
        // The id lands in a URL path (Gemini) and in logs: allow only the characters real ids use.
        guard !name.isEmpty, name.utf8.count <= 128, name.utf8.allSatisfy(isModelByte) else {
            return .failure(unknown(model))
        }
        let provider: ProviderKind
        if name.hasPrefix("gpt-") || name.hasPrefix("chatgpt-") || isOSeries(name) {
            provider = .openai
        } else if name.hasPrefix("claude-") {
            provider = .anthropic
        } else if name.hasPrefix("gemini-") {
            provider = .gemini
        } else if name.hasPrefix("mock-") {
            provider = .mock
        } else {
            return .failure(unknown(model))
        }
        return .success(RoutedModel(provider: provider, model: name))
    }

    /// OpenAI's reasoning models: `o1`, `o3-mini`, `o4-mini`…
    static func isOSeries(_ name: String) -> Bool {
        let u = Array(name.utf8.prefix(2))
        return u.count == 2 && u[0] == UInt8(ascii: "o") && u[1] >= UInt8(ascii: "0") && u[1] <= UInt8(ascii: "9")
    }

    static func isModelByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    static func unknown(_ model: String) -> ProviderError {
        ProviderError(.unknownModel, "unknown model '\(model)'", param: "model")
    }
}
