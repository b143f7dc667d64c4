import JSONCore

/// Builds OpenAI Chat Completions streaming requests (docs/wire-formats.md §2.1–2.2) for the three
/// kinds that speak it: OpenAI itself, Azure OpenAI (deployment URL, `api-version`, `api-key`) and
/// OpenAI-compatible servers (vLLM, Ollama, Groq…: optional key, the widely accepted fields only).
public enum OpenAIRequestBuilder {
    public static func build(_ request: ChatRequest, model: String, deployment: Deployment,
                             defaults: GenerationDefaults) -> Result<UpstreamRequest, ProviderError> {
        guard deployment.hasKey else { return .failure(.notConfigured(deployment)) }
        let kind = deployment.kind
        // Only OpenAI's own reasoning families reject sampling values and `max_tokens`; a
        // compatible server's model is whatever it serves, and takes the classic fields.
        let reasoning = kind != .openAICompatible && isReasoningModel(model)
        // Reasoning models replaced `system` with `developer`; older ones only know `system`.
        let systemRole = reasoning ? "developer" : "system"

        var w = JSONWriter(capacity: 512)
        w.beginObject()
        w.field("model", model)
        w.key("messages")
        w.beginArray()
        if let system = request.system, !system.isEmpty {
            message(&w, role: systemRole, content: system)
        }
        for m in request.messages {
            message(&w, role: m.role == .system ? systemRole : m.role.rawValue, content: m.content)
        }
        w.endArray()
        w.field("stream", true)
        if request.includeUsage && deployment.includeUsage {
            w.key("stream_options")
            w.beginObject()
            w.field("include_usage", true)
            w.endObject()
        }
        // `max_tokens` is deprecated by OpenAI and rejected by its reasoning models, but it is
        // the field every compatible server knows.
        w.field(kind == .openAICompatible ? "max_tokens" : "max_completion_tokens", request.maxTokens ?? defaults.maxTokens)
        // Reasoning models answer 400 to any non-default sampling value.
        if let t = request.temperature ?? defaults.temperature, !reasoning || t == 1 {
            w.field("temperature", t)
        }
        if let p = request.topP, !reasoning || p == 1 {
            w.field("top_p", p)
        }
        // `topK` has no Chat Completions counterpart; sending it would only earn a 400.
        if let stop = RequestBuilding.stopSequences(request) {
            w.key("stop")
            w.beginArray()
            for s in stop { w.string(s) }
            w.endArray()
        }
        w.endObject()

        let base = RequestBuilding.trimmingTrailingSlash(deployment.baseURL)
        var url = base + "/chat/completions"
        var headers: [(String, String)] = []
        if kind == .azureOpenAI {
            url += "?api-version=" + (deployment.apiVersion ?? "")
            if let key = deployment.apiKey { headers.append(("api-key", key)) }
        } else if let key = deployment.apiKey {
            headers.append(("Authorization", "Bearer " + key))
        }
        headers.append(("Content-Type", "application/json"))
        headers += deployment.headers
        return .success(UpstreamRequest(url: url, headers: headers, body: w.bytes))
    }

    /// `o1`, `o3-mini`, `gpt-5*`, `gpt-6*`: the families with reasoning-model restrictions.
    public static func isReasoningModel(_ model: String) -> Bool {
        isOSeries(model) || model.hasPrefix("gpt-5") || model.hasPrefix("gpt-6")
    }

    /// OpenAI's reasoning models: `o1`, `o3-mini`, `o4-mini`…
    static func isOSeries(_ name: String) -> Bool {
        let u = Array(name.utf8.prefix(2))
        return u.count == 2 && u[0] == UInt8(ascii: "o") && u[1] >= UInt8(ascii: "0") && u[1] <= UInt8(ascii: "9")
    }

    static func message(_ w: inout JSONWriter, role: String, content: String) {
        w.beginObject()
        w.field("role", role)
        w.field("content", content)
        w.endObject()
    }
}
