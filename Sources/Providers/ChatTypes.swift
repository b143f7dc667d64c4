/// Who wrote a message in the normalized (provider-neutral) conversation.
public enum ChatRole: String, Sendable, Equatable {
    case system, user, assistant
}

/// One turn of the normalized conversation.
public struct ChatMessage: Sendable, Equatable {
    public var role: ChatRole
    public var content: String

    public init(role: ChatRole, content: String) {
        self.role = role
        self.content = content
    }
}

/// A provider-neutral chat request: what the gateway knows before it picks a provider.
public struct ChatRequest: Sendable, Equatable {
    /// The model name as the client sent it (routing strips prefixes such as `models/`).
    public var model: String
    public var system: String?
    public var messages: [ChatMessage]
    public var maxTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    /// Sample only from the K likeliest tokens: Anthropic and Gemini have it, OpenAI does not
    /// (its builder leaves it out).
    public var topK: Int?
    public var stop: [String]?
    /// Ask for a usage report at the end of the stream (always on for upstreams that support it).
    public var includeUsage: Bool

    public init(model: String, system: String? = nil, messages: [ChatMessage], maxTokens: Int? = nil,
                temperature: Double? = nil, topP: Double? = nil, topK: Int? = nil, stop: [String]? = nil,
                includeUsage: Bool = true) {
        self.model = model
        self.system = system
        self.messages = messages
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
        self.stop = stop
        self.includeUsage = includeUsage
    }
}

/// Token accounting in OpenAI's vocabulary, whatever the provider reported.
public struct Usage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int

    public init(promptTokens: Int, completionTokens: Int, totalTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
    }
}

/// Why generation stopped, normalized to OpenAI's `finish_reason` values (docs/wire-formats.md §6),
/// with the provider's own value kept for logs and storage.
public struct FinishReason: Sendable, Equatable {
    /// OpenAI's vocabulary; `rawValue` is the wire string.
    public enum Normalized: String, Sendable, Equatable {
        case stop
        case length
        case toolCalls = "tool_calls"
        case contentFilter = "content_filter"
    }

    public var normalized: Normalized
    /// The provider's value, e.g. `end_turn` or `MAX_TOKENS`.
    public var raw: String

    public init(_ normalized: Normalized, raw: String) {
        self.normalized = normalized
        self.raw = raw
    }

    /// The `finish_reason` string our API emits.
    public var value: String { normalized.rawValue }

    public static func openAI(_ raw: String) -> FinishReason {
        switch raw {
        case "length": return FinishReason(.length, raw: raw)
        case "tool_calls", "function_call": return FinishReason(.toolCalls, raw: raw)
        case "content_filter": return FinishReason(.contentFilter, raw: raw)
        default: return FinishReason(.stop, raw: raw)
        }
    }

    public static func anthropic(_ raw: String) -> FinishReason {
        switch raw {
        case "max_tokens", "model_context_window_exceeded": return FinishReason(.length, raw: raw)
        case "tool_use": return FinishReason(.toolCalls, raw: raw)
        case "refusal": return FinishReason(.contentFilter, raw: raw)
        default: return FinishReason(.stop, raw: raw)
        }
    }

    public static func gemini(_ raw: String) -> FinishReason {
        switch raw {
        case "MAX_TOKENS": return FinishReason(.length, raw: raw)
        case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "MODEL_ARMOR", "LANGUAGE":
            return FinishReason(.contentFilter, raw: raw)
        default:
            if raw.hasPrefix("IMAGE_") { return FinishReason(.contentFilter, raw: raw) }
            // OTHER, MALFORMED_*, unknown: the answer ended; callers log `raw`.
            return FinishReason(.stop, raw: raw)
        }
    }
}
