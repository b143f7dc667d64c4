import JSONCore

/// Builds `POST {base}/models/{model}:streamGenerateContent?alt=sse` requests (docs/wire-formats.md §4.1–4.2).
public enum GeminiRequestBuilder {
    public static func build(_ request: ChatRequest, model: String, deployment: Deployment,
                             defaults: GenerationDefaults) -> Result<UpstreamRequest, ProviderError> {
        guard deployment.hasKey else { return .failure(.notConfigured(deployment)) }

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
        w.field("maxOutputTokens", request.maxTokens ?? defaults.maxTokens)
        if let t = request.temperature ?? defaults.temperature { w.field("temperature", t) }
        if let p = request.topP { w.field("topP", p) }
        if let k = request.topK { w.field("topK", k) }
        if let stop = RequestBuilding.stopSequences(request) {
            w.key("stopSequences")
            w.beginArray()
            for s in stop { w.string(s) }
            w.endArray()
        }
        w.endObject()
        w.endObject()

        var headers: [(String, String)] = []
        if let key = deployment.apiKey { headers.append(("x-goog-api-key", key)) }
        headers.append(("Content-Type", "application/json"))
        headers += deployment.headers
        return .success(UpstreamRequest(
            url: RequestBuilding.trimmingTrailingSlash(deployment.baseURL) + "/models/" + model + ":streamGenerateContent?alt=sse",
            headers: headers, body: w.bytes))
    }
}
