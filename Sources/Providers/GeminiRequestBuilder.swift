import JSONCore

/// Builds `POST {base}/models/{model}:streamGenerateContent?alt=sse` requests (wire-formats §4.1–4.2).
public enum GeminiRequestBuilder {
    public static func build(_ request: ChatRequest, model: String, config: ProviderConfig) -> Result<UpstreamRequest, ProviderError> {
        guard let key = config.key(for: .gemini) else { return .failure(.notConfigured(.gemini)) }

        var w = JSONWriter(capacity: 512)
        w.beginObject()
        w.key("contents")
        w.beginArray()
        for m in request.messages where m.role != .system {
            w.beginObject()
            w.field("role", m.role == .assistant ? "model" : "user")
            w.key("parts")
            w.beginArray()
            w.beginObject()
            w.field("text", m.content)
            w.endObject()
            w.endArray()
            w.endObject()
        }
        w.endArray()
        if let system = RequestBuilding.systemText(request) {
            w.key("systemInstruction")
            w.beginObject()
            w.key("parts")
            w.beginArray()
            w.beginObject()
            w.field("text", system)
            w.endObject()
            w.endArray()
            w.endObject()
        }
        w.key("generationConfig")
        w.beginObject()
        w.field("maxOutputTokens", request.maxTokens ?? config.defaultMaxTokens)
        if let t = request.temperature ?? config.defaultTemperature { w.field("temperature", t) }
        if let p = request.topP { w.field("topP", p) }
        if let stop = RequestBuilding.stopSequences(request) {
            w.key("stopSequences")
            w.beginArray()
            for s in stop { w.string(s) }
            w.endArray()
        }
        w.endObject()
        w.endObject()

        return .success(UpstreamRequest(
            url: RequestBuilding.trimmingTrailingSlash(config.geminiBaseURL) + "/models/" + model + ":streamGenerateContent?alt=sse",
            headers: [("x-goog-api-key", key), ("Content-Type", "application/json")],
            body: w.bytes))
    }
}
