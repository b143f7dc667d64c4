import JSONCore

/// Builds `POST {base}/chat/completions` streaming requests (wire-formats §2.1–2.2).
public enum OpenAIRequestBuilder {
    public static func build(_ request: ChatRequest, model: String, config: ProviderConfig) -> Result<UpstreamRequest, ProviderError> {
        guard let key = config.key(for: .openai) else { return .failure(.notConfigured(.openai)) }
        let reasoning = isReasoningModel(model)
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
        if request.includeUsage {
            w.key("stream_options")
            w.beginObject()
            w.field("include_usage", true)
            w.endObject()
        }
        // `max_tokens` is deprecated and rejected by reasoning models.
        w.field("max_completion_tokens", request.maxTokens ?? config.defaultMaxTokens)
        // Reasoning models answer 400 to any non-default sampling value.
        if let t = request.temperature ?? config.defaultTemperature, !reasoning || t == 1 {
            w.field("temperature", t)
        }
        if let p = request.topP, !reasoning || p == 1 {
            w.field("top_p", p)
        }
        if let stop = RequestBuilding.stopSequences(request) {
            w.key("stop")
            w.beginArray()
            for s in stop { w.string(s) }
            w.endArray()
        }
        w.endObject()

        return .success(UpstreamRequest(
            url: RequestBuilding.trimmingTrailingSlash(config.openAIBaseURL) + "/chat/completions",
            headers: [("Authorization", "Bearer " + key), ("Content-Type", "application/json")],
            body: w.bytes))
    }

    /// `o1`, `o3-mini`, `gpt-5*`, `gpt-6*`: the families with reasoning-model restrictions.
    public static func isReasoningModel(_ model: String) -> Bool {
        ModelRouter.isOSeries(model) || model.hasPrefix("gpt-5") || model.hasPrefix("gpt-6")
    }

    static func message(_ w: inout JSONWriter, role: String, content: String) {
        w.beginObject()
        w.field("role", role)
        w.field("content", content)
        w.endObject()
    }
}
