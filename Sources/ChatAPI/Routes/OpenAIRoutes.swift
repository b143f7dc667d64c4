import HTTP
import JSONCore
import Providers
import Reactor
import Storage

/// The OpenAI-compatible surface: POST /v1/chat/completions and GET /v1/models, so OpenAI SDKs
/// work unchanged with any provider's model behind ChatRelay. Stateless unless the request
/// carries `X-Conversation-Id` (an id, or `new`), in which case the turn is stored.
extension ChatService {
    struct OpenAIChatBody {
        var request: ChatRequest
        var stream: Bool
        var includeUsage: Bool
        var lastUserText: String
        var fallbacks: [String]?

        init(_ body: JSONValue, defaultModel: String) throws(ClientError) {
            let f = Fields(object: body)
            let model = try f.string("model", maxBytes: ModelNames.maxBytes) ?? defaultModel
            guard let raw = body["messages"], !raw.isNull else { throw .invalid("messages is required", param: "messages") }
            guard let items = raw.array, !items.isEmpty else { throw .invalid("messages must be a non-empty array", param: "messages") }
            var messages: [ChatMessage] = []
            var lastUser: String?
            for (i, m) in items.enumerated() {
                let param = "messages[\(i)]"
                guard m.object != nil else { throw .invalid("\(param) must be an object", param: param) }
                guard let roleName = m["role"]?.string else { throw .invalid("\(param).role is required", param: "\(param).role") }
                let role: ChatRole
                switch roleName {
                case "system", "developer": role = .system
                case "user": role = .user
                case "assistant": role = .assistant
                default:
                    throw .invalid("\(param).role '\(roleName)' is not supported here (use system, developer, user or assistant)", param: "\(param).role")
                }
                let text = try OpenAIChatBody.text(m["content"], param: "\(param).content", optional: role == .assistant)
                if role == .user { lastUser = text }
                messages.append(ChatMessage(role: role, content: text))
            }
            guard let lastUser else { throw .invalid("messages must contain a user message", param: "messages") }
            lastUserText = lastUser
            for unsupported in ["tools", "functions", "tool_choice", "response_format", "logprobs", "audio"] where body[unsupported] != nil && body[unsupported]?.isNull == false {
                throw .invalid("\(unsupported) is not supported by this gateway", param: unsupported)
            }
            if let n = try f.int("n", 1...128), n != 1 { throw .invalid("only n=1 is supported", param: "n") }
            stream = try f.bool("stream") ?? false
            includeUsage = false
            if let so = body["stream_options"], !so.isNull {
                guard stream else { throw .invalid("stream_options is only allowed when stream is true", param: "stream_options") }
                guard so.object != nil else { throw .invalid("stream_options must be an object", param: "stream_options") }
                includeUsage = try Fields(object: so).bool("include_usage") ?? false
            }
            let legacyMax = try f.int("max_tokens", 1...1_000_000)
            let maxTokens = try f.int("max_completion_tokens", 1...1_000_000) ?? legacyMax
            let temperature = try f.double("temperature", 0...2)
            let topP = try f.double("top_p", 0...1)
            var stop: [String]?
            if let s = body["stop"], !s.isNull {
                if let one = s.string {
                    stop = [one]
                } else if let many = s.array, many.count <= 4, many.allSatisfy({ $0.string != nil }) {
                    stop = many.compactMap(\.string)
                } else {
                    throw .invalid("stop must be a string or an array of up to 4 strings", param: "stop")
                }
            }
            _ = try f.string("user", maxBytes: 256)
            fallbacks = try f.modelNames("fallbacks")
            // Unset max tokens fall to the catalog model's default, then MAX_TOKENS.
            request = ChatRequest(model: model, messages: messages, maxTokens: maxTokens,
                                  temperature: temperature, topP: topP, stop: stop)
        }

        /// The system and developer messages joined, as a stored conversation's system prompt.
        static func systemPrompt(_ request: ChatRequest) -> String? {
            let system = request.messages.filter { $0.role == .system }.map(\.content).joined(separator: "\n\n")
            return system.isEmpty ? nil : system
        }

        /// A message's content: a string, or an array of text parts.
        static func text(_ v: JSONValue?, param: String, optional: Bool) throws(ClientError) -> String {
            guard let v, !v.isNull else {
                if optional { return "" }
                throw .invalid("\(param) is required", param: param)
            }
            if let s = v.string { try Fields.rejectNUL(s, param: param); return s }
            guard let parts = v.array else { throw .invalid("\(param) must be a string or an array of text parts", param: param) }
            var out = ""
            for (i, p) in parts.enumerated() {
                guard p["type"]?.string == "text", let t = p["text"]?.string else {
                    throw .invalid("\(param)[\(i)] must be a text part; other content types are not supported", param: "\(param)[\(i)]")
                }
                try Fields.rejectNUL(t, param: "\(param)[\(i)].text")
                out += t
            }
            return out
        }
    }

    func openAIChat(_ req: HTTPRequest, _ r: HTTPResponder) {
        guard let caller = authorize(req, r, shape: .openAI, retry: { [self] in openAIChat(req, r) }), let json = jsonBody(req, r, shape: .openAI) else { return }
        let body: OpenAIChatBody
        do { body = try OpenAIChatBody(json, defaultModel: defaultModel) } catch {
            return r.respond(error, shape: .openAI)
        }
        let route: RoutedModel
        switch self.route(body.request.model) {
        case .failure(let e):
            let (status, headers, payload) = OpenAIWire(stream: false, includeUsage: false, model: body.request.model, created: 0).errorResponse(e)
            return r.respond(status: status, headers: headers, body: payload)
        case .success(let rt): route = rt
        }
        if let e = checkFallbacks(body.fallbacks) {
            let (status, headers, payload) = OpenAIWire(stream: false, includeUsage: false, model: body.request.model, created: 0).errorResponse(e)
            return r.respond(status: status, headers: headers, body: payload)
        }
        let wire = OpenAIWire(stream: body.stream, includeUsage: body.includeUsage, model: body.request.model,
                              created: wallClockMillis() / 1000)
        // Stored, the system/developer messages become the conversation's system prompt.
        startTurn(req, r, caller: caller, wire: wire, route: route, request: body.request, fallbacks: body.fallbacks,
                  system: OpenAIChatBody.systemPrompt(body.request), userText: body.lastUserText, shape: .openAI,
                  badConversationMessage: "X-Conversation-Id must be a conversation id or 'new'")
    }

    func openAIModels(_ req: HTTPRequest, _ r: HTTPResponder) {
        guard authorize(req, r, shape: .openAI, retry: { [self] in openAIModels(req, r) }) != nil else { return }
        let created = wallClockMillis() / 1000
        var w = JSONWriter()
        w.beginObject()
        w.field("object", "list")
        w.key("data")
        w.beginArray()
        for m in listedModels {
            w.beginObject()
            w.field("id", m.id)
            w.field("object", "model")
            w.field("created", Int(created))
            w.field("owned_by", m.kind.rawValue)
            w.field("available", m.available)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        r.respondJSON(status: 200, w.bytes)
    }
}
