import JSONCore

/// What the mock needs from an accepted OpenAI-family request body.
struct OpenAIChatRequest {
    var model: String
    var lastUser: String
    var promptWords: Int
    var stream: Bool
    var includeUsage: Bool
}

/// Why a route refuses a body: answered 400 in OpenAI's error shape.
struct OpenAIRefusal: Error {
    var message: String
    var param: String?
    var code = "invalid_value"
}

/// The request checks of each OpenAI-speaking server, strict where the real one is strict so the
/// gateway is proven to send what each accepts.
enum OpenAIRequestCheck {
    static func check(_ raw: [UInt8], route: OpenAIRoute) throws(OpenAIRefusal) -> OpenAIChatRequest {
        guard let body = try? JSONParser.parse(raw), body.object != nil else {
            throw OpenAIRefusal(message: "We could not parse the JSON body of your request.", param: nil)
        }
        let model: String
        if case .azure(let deployment) = route, body["model"] == nil || body["model"]?.isNull == true {
            model = deployment
        } else if let m = body["model"]?.string, !m.isEmpty {
            model = m
        } else {
            throw OpenAIRefusal(message: "you must provide a model parameter", param: "model")
        }
        var compat = false
        if case .compat = route { compat = true }
        // Pydantic-validated servers (vLLM and kin) forbid fields they do not model.
        if compat && body["max_completion_tokens"] != nil {
            throw OpenAIRefusal(message: "Extra inputs are not permitted: max_completion_tokens", param: "max_completion_tokens", code: "extra_forbidden")
        }
        guard let messages = body["messages"]?.array, !messages.isEmpty else {
            throw OpenAIRefusal(message: "'messages' must be a non-empty array", param: "messages")
        }
        var lastUser = ""
        var words = 0
        for (i, m) in messages.enumerated() {
            let param = "messages[\(i)].role"
            guard let role = m["role"]?.string, ["system", "developer", "user", "assistant", "tool"].contains(role) else {
                throw OpenAIRefusal(message: "Invalid value for '\(param)'", param: param)
            }
            // Many chat templates know only system/user/assistant/tool.
            if compat && role == "developer" {
                throw OpenAIRefusal(message: "Invalid value for '\(param)': 'developer' is not supported by this server", param: param)
            }
            guard let t = MockText.text(of: m["content"]) else {
                throw OpenAIRefusal(message: "Invalid content for 'messages[\(i)].content'", param: "messages[\(i)].content")
            }
            words += MockText.countWords(t)
            if role == "user" { lastUser = t }
        }
        // A compatible server's model is whatever it serves: no reasoning-family rules there.
        let reasoning = !compat && (model.hasPrefix("o") || model.hasPrefix("gpt-5") || model.hasPrefix("gpt-6"))
        if reasoning && body["max_tokens"] != nil {
            throw OpenAIRefusal(message: "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                                param: "max_tokens", code: "unsupported_parameter")
        }
        if reasoning, let t = body["temperature"]?.double, t != 1 {
            throw OpenAIRefusal(message: "Unsupported value: 'temperature' does not support \(t) with this model. Only the default (1) value is supported.",
                                param: "temperature", code: "unsupported_value")
        }
        let stream = body["stream"]?.bool ?? false
        if body["stream_options"] != nil && body["stream_options"]?.isNull == false && !stream {
            throw OpenAIRefusal(message: "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param: "stream_options")
        }
        return OpenAIChatRequest(model: model, lastUser: lastUser, promptWords: words, stream: stream,
                                 includeUsage: body["stream_options"]?["include_usage"]?.bool ?? false)
    }
}
