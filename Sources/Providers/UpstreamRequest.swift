/// Everything the transport needs to open an upstream stream: always a POST.
public struct UpstreamRequest: Sendable, Equatable {
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(url: String, headers: [(String, String)], body: [UInt8]) {
        self.url = url
        self.headers = headers
        self.body = body
    }

    public static func == (lhs: UpstreamRequest, rhs: UpstreamRequest) -> Bool {
        lhs.url == rhs.url && lhs.body == rhs.body && lhs.headers.elementsEqual(rhs.headers, by: { $0 == $1 })
    }

    /// The first header named `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        Headers.value(name, in: headers)
    }
}

/// One entry point over the per-provider builders, so callers do not switch on the provider.
public enum UpstreamRequests {
    /// Builds the upstream request for an already routed model, with the catalog model's defaults
    /// filling what the request leaves unset. The mock provider is served in process and has no
    /// upstream request.
    public static func build(_ request: ChatRequest, route: RoutedModel, defaults: GenerationDefaults) -> Result<UpstreamRequest, ProviderError> {
        var req = request
        if req.maxTokens == nil { req.maxTokens = route.defaults.maxTokens }
        if req.temperature == nil { req.temperature = route.defaults.temperature }
        if req.system == nil || req.system?.isEmpty == true, !req.messages.contains(where: { $0.role == .system }) {
            req.system = route.defaults.system
        }
        let d = route.deployment
        switch d.kind {
        case .openai, .azureOpenAI, .openAICompatible:
            return OpenAIRequestBuilder.build(req, model: route.model, deployment: d, defaults: defaults)
        case .anthropic: return AnthropicRequestBuilder.build(req, model: route.model, deployment: d, defaults: defaults)
        case .gemini: return GeminiRequestBuilder.build(req, model: route.model, deployment: d, defaults: defaults)
        case .mock: return .failure(ProviderError(.invalidRequest, "mock models are served in process", param: "model"))
        }
    }

    /// Maps a non-2xx upstream answer to our error, reading the provider's body shape.
    public static func mapHTTPError(provider: ProviderKind, status: Int, headers: [(String, String)], body: [UInt8]) -> ProviderError {
        switch provider {
        case .openai: return OpenAIErrors.mapHTTPError(status: status, headers: headers, body: body)
        case .anthropic: return AnthropicErrors.mapHTTPError(status: status, headers: headers, body: body)
        case .gemini: return GeminiErrors.mapHTTPError(status: status, headers: headers, body: body)
        case .mock: return ProviderError(.upstreamError, "mock failed with HTTP \(status)", upstreamStatus: status)
        }
    }

    /// A fresh stream decoder for a deployment kind (the mock needs none: it yields events directly).
    public static func makeStreamDecoder(for kind: DeploymentKind) -> (any ProviderStreamDecoder)? {
        switch kind {
        case .openai, .azureOpenAI: return OpenAIStreamDecoder()
        case .openAICompatible: return OpenAIStreamDecoder(finishEndsStream: true)
        case .anthropic: return AnthropicStreamDecoder()
        case .gemini: return GeminiStreamDecoder()
        case .mock: return nil
        }
    }
}

/// Header lookups; HTTP field names are case-insensitive.
enum Headers {
    static func value(_ name: String, in headers: [(String, String)]) -> String? {
        let wanted = lowercased(name)
        for (key, value) in headers where lowercased(key) == wanted { return value }
        return nil
    }

    static func lowercased(_ s: String) -> String {
        // ASCII-only lowering: header names are tokens, and this avoids Unicode case tables.
        String(decoding: s.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }
}

/// Shared helpers for the request builders.
enum RequestBuilding {
    static func trimmingTrailingSlash(_ base: String) -> String {
        var s = Substring(base)
        while s.hasSuffix("/") { s = s.dropLast() }
        return String(s)
    }

    /// Requests's system prompt plus any system-role messages, in order, joined by blank lines.
    static func systemText(_ request: ChatRequest) -> String? {
        var parts: [String] = []
        if let system = request.system, !system.isEmpty { parts.append(system) }
        for message in request.messages where message.role == .system && !message.content.isEmpty {
            parts.append(message.content)
        }
        return parts.isEmpty ? nil : parts.joined(separator: "\n\n")
    }

    static func stopSequences(_ request: ChatRequest) -> [String]? {
        guard let stop = request.stop, !stop.isEmpty else { return nil }
        return stop
    }
}
