import HTTP

/// Which OpenAI-speaking server a route imitates. They share the chunk format (`OpenAIFormat`)
/// but differ in URL, auth header and the request fields they refuse.
enum OpenAIRoute {
    /// `POST /v1/chat/completions`: `Authorization: Bearer`, reasoning-model checks.
    case openAI
    /// `POST /openai/deployments/{deployment}/chat/completions?api-version=…`: `api-key` header,
    /// `model` optional (the deployment names it).
    case azure(deployment: String)
    /// `POST /compat/v1/chat/completions`: a local vLLM/Ollama-like server, keyless, refusing
    /// OpenAI's newer fields.
    case compat
}

/// Azure's own error bodies for what its gateway refuses before the model sees the request;
/// compact JSON with the status as a string `code`, unlike OpenAI's.
enum AzureErrors {
    static func accessDenied() -> (headers: HTTPHeaders, body: [UInt8]) {
        body(#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}"#)
    }

    static func resourceNotFound() -> (headers: HTTPHeaders, body: [UInt8]) {
        body(#"{"error":{"code":"404","message":"Resource not found"}}"#)
    }

    private static func body(_ json: String) -> (headers: HTTPHeaders, body: [UInt8]) {
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json")
        return (h, Array(json.utf8))
    }
}
