import JSONCore

/// Builds `POST {base}/v1/messages` streaming requests (docs/wire-formats.md §3.1–3.2).
public enum AnthropicRequestBuilder {
    /// The API version that rejects `temperature`/`top_p`/`top_k` even at default values.
    static let noSamplingVersion = "2026-10-21"

    public static func build(_ request: ChatRequest, model: String, deployment: Deployment,
                             defaults: GenerationDefaults) -> Result<UpstreamRequest, ProviderError> {
        guard deployment.hasKey else { return .failure(.notConfigured(deployment)) }
        let version = deployment.apiVersion ?? ProviderConfig.defaultAnthropicVersion

        var w = JSONWriter(capacity: 512)
        w.beginObject()
        w.field("model", model)
        // Required by the API, unlike the other providers.
        w.field("max_tokens", request.maxTokens ?? defaults.maxTokens)
        if let system = RequestBuilding.systemText(request) {
            w.field("system", system)
        }
        w.key("messages")
        w.beginArray()
        for turn in mergedTurns(request.messages) {
            w.beginObject()
            w.field("role", turn.role.rawValue)
            w.field("content", turn.content)
            w.endObject()
        }
        w.endArray()
        w.field("stream", true)
        if version != noSamplingVersion {
            if let t = request.temperature ?? defaults.temperature { w.field("temperature", t) }
            if let p = request.topP { w.field("top_p", p) }
            if let k = request.topK { w.field("top_k", k) }
        }
        if let stop = RequestBuilding.stopSequences(request) {
            w.key("stop_sequences")
            w.beginArray()
            for s in stop { w.string(s) }
            w.endArray()
        }
        w.endObject()

        var headers: [(String, String)] = []
        if let key = deployment.apiKey { headers.append(("x-api-key", key)) }
        headers += [("anthropic-version", version), ("Content-Type", "application/json")]
        headers += deployment.headers
        return .success(UpstreamRequest(
            url: RequestBuilding.trimmingTrailingSlash(deployment.baseURL) + "/v1/messages", headers: headers, body: w.bytes))
    }

    /// User/assistant turns with consecutive same-role messages joined, since the Messages API
    /// expects alternation; system messages go to the top-level `system` instead.
    static func mergedTurns(_ messages: [ChatMessage]) -> [ChatMessage] {
        var turns: [ChatMessage] = []
        for m in messages where m.role != .system {
            if let last = turns.last, last.role == m.role {
                turns[turns.count - 1].content = last.content + "\n\n" + m.content
            } else {
                turns.append(m)
            }
        }
        return turns
    }
}
