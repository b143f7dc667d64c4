import JSONCore
import Providers

/// A `POST /v1/messages` (or `/v1/messages/count_tokens`) body in Anthropic's shape
/// (docs/wire-formats.md §3.2), read into the provider-neutral request. Only what every provider can do
/// gets through: text. Anything else is refused before anything is stored or sent upstream,
/// naming the field the way Anthropic does (`messages.0.content.1.type`).
struct AnthropicMessagesBody {
    var request: ChatRequest
    var stream: Bool
    /// The last user message: what a stored turn keeps as the user's message.
    var lastUserText: String
    var fallbacks: [String]?

    /// `requireMaxTokens` is false for count_tokens, which takes no output cap.
    init(_ body: JSONValue, defaultModel: String, requireMaxTokens: Bool = true) throws(ClientError) {
        let f = Fields(object: body)
        let model = try f.string("model", maxBytes: ModelNames.maxBytes) ?? defaultModel
        // Required, as Anthropic requires it: a client written for Anthropic always sends one, and
        // a cap the gateway made up would truncate answers the client did not expect to be cut.
        if requireMaxTokens, body["max_tokens"]?.isNull ?? true { throw .invalid("Field required", param: "max_tokens") }
        let maxTokens = try f.int("max_tokens", 1...1_000_000)
        let messages = try Self.messages(body["messages"])
        let system = try Self.system(body["system"])
        // Anthropic's own ranges, which its clients are written against.
        let temperature = try f.double("temperature", 0...1)
        let topP = try f.double("top_p", 0...1)
        let topK = try f.int("top_k", 1...1_000_000)
        let stop = try Self.stopSequences(body["stop_sequences"])
        try Self.checkMetadata(body["metadata"])
        stream = try f.bool("stream") ?? false
        fallbacks = try f.modelNames("fallbacks")
        // Tool use needs tool_use/tool_result blocks in both directions, which this surface does not relay.
        if let tools = body["tools"], !tools.isNull, tools.array?.isEmpty != true {
            throw .invalid("tool use is not supported by this gateway", param: "tools")
        }
        if let choice = body["tool_choice"], !choice.isNull {
            throw .invalid("tool use is not supported by this gateway", param: "tool_choice")
        }
        lastUserText = messages.last(where: { $0.role == .user })?.content ?? ""
        request = ChatRequest(model: model, system: system, messages: messages, maxTokens: maxTokens,
                              temperature: temperature, topP: topP, topK: topK, stop: stop)
    }

    /// User and assistant turns. Consecutive turns of one role are allowed (Anthropic merges them,
    /// and so does its request builder); only a final assistant turn (a prefill) may be empty.
    static func messages(_ raw: JSONValue?) throws(ClientError) -> [ChatMessage] {
        guard let raw, !raw.isNull else { throw .invalid("Field required", param: "messages") }
        guard let items = raw.array else { throw .invalid("must be an array of messages", param: "messages") }
        guard !items.isEmpty else { throw .invalid("at least one message is required", param: "messages") }
        var messages: [ChatMessage] = []
        messages.reserveCapacity(items.count)
        for (i, m) in items.enumerated() {
            let param = "messages.\(i)"
            guard m.object != nil else { throw .invalid("must be an object with role and content", param: param) }
            guard let roleValue = m["role"], !roleValue.isNull else { throw .invalid("Field required", param: "\(param).role") }
            let role: ChatRole
            switch roleValue.string ?? "" {
            case "user": role = .user
            case "assistant": role = .assistant
            case "system":
                throw .invalid("must be 'user' or 'assistant'; the system prompt goes in the top-level system field", param: "\(param).role")
            default:
                throw .invalid("must be 'user' or 'assistant'", param: "\(param).role")
            }
            if i == 0 && role != .user { throw .invalid("the first message must use the user role", param: "\(param).role") }
            let text = try Self.text(m["content"], param: "\(param).content")
            if text.isEmpty && !(role == .assistant && i == items.count - 1) {
                throw .invalid("must not be empty (only a final assistant message may be)", param: "\(param).content")
            }
            messages.append(ChatMessage(role: role, content: text))
        }
        return messages
    }

    /// `system`: a string or text blocks; nil when absent.
    static func system(_ raw: JSONValue?) throws(ClientError) -> String? {
        guard let raw, !raw.isNull else { return nil }
        let text = try Self.text(raw, param: "system")
        return text.isEmpty ? nil : text
    }

    /// A string, or an array of `{"type":"text","text":…}` blocks joined together. Other keys of a
    /// text block (`cache_control`, `citations`) change nothing about its text and are ignored.
    static func text(_ v: JSONValue?, param: String) throws(ClientError) -> String {
        guard let v, !v.isNull else { throw .invalid("Field required", param: param) }
        if let s = v.string {
            try Fields.rejectNUL(s, param: param)
            return s
        }
        guard let blocks = v.array else { throw .invalid("must be a string or an array of text blocks", param: param) }
        var out = ""
        for (j, block) in blocks.enumerated() {
            let blockParam = "\(param).\(j)"
            guard block.object != nil else { throw .invalid("must be a content block object", param: blockParam) }
            guard let type = block["type"]?.string else { throw .invalid("Field required", param: "\(blockParam).type") }
            guard type == "text" else {
                throw .invalid("'\(type)' blocks are not supported by this gateway; only text blocks are", param: "\(blockParam).type")
            }
            guard let t = block["text"]?.string else { throw .invalid("must be a string", param: "\(blockParam).text") }
            try Fields.rejectNUL(t, param: "\(blockParam).text")
            out += t
        }
        return out
    }

    /// `stop_sequences`: non-empty strings. OpenAI takes at most 4 and refuses more itself; the
    /// bound here only keeps a request from carrying thousands.
    static func stopSequences(_ raw: JSONValue?) throws(ClientError) -> [String]? {
        guard let raw, !raw.isNull else { return nil }
        guard let items = raw.array, items.count <= 64 else {
            throw .invalid("must be an array of at most 64 strings", param: "stop_sequences")
        }
        var out: [String] = []
        for (i, item) in items.enumerated() {
            guard let s = item.string, !s.isEmpty else { throw .invalid("must be a non-empty string", param: "stop_sequences.\(i)") }
            try Fields.rejectNUL(s, param: "stop_sequences.\(i)")
            out.append(s)
        }
        return out.isEmpty ? nil : out
    }

    /// `metadata.user_id` identifies the end user to Anthropic; no other provider takes it, so it
    /// is checked and not sent on.
    static func checkMetadata(_ raw: JSONValue?) throws(ClientError) {
        guard let raw, !raw.isNull else { return }
        guard raw.object != nil else { throw .invalid("must be an object", param: "metadata") }
        if let user = raw["user_id"], !user.isNull {
            guard let s = user.string, s.utf8.count <= 256 else {
                throw .invalid("must be a string of at most 256 bytes", param: "metadata.user_id")
            }
            try Fields.rejectNUL(s, param: "metadata.user_id")
        }
    }
}
