import JSONCore

/// A failure anywhere between routing and the end of an upstream stream, as a value. It knows the
/// error `type` and HTTP status our API reports for it (docs/API.md).
public struct ProviderError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, in terms our clients can act on.
    public enum Kind: String, Sendable, Equatable {
        case invalidRequest
        /// The provider rejected the gateway's own key (not the client's).
        case unauthorized
        case rateLimited
        /// Quota or billing exhausted: retrying will not help.
        case quotaExceeded
        case overloaded
        case upstreamError
        case upstreamTimeout
        /// The stream ended without the provider's terminator.
        case upstreamIncomplete
        /// The provider sent bytes we could not decode.
        case malformed
        case connectFailed
        case dnsFailed
        case tlsFailed
        case providerNotConfigured
        case unknownModel
    }

    public var kind: Kind
    public var message: String
    /// The upstream HTTP status, when an upstream answered (200 for mid-stream errors).
    public var upstreamStatus: Int?
    /// Provider's error type/status string, e.g. `rate_limit_error`, `RESOURCE_EXHAUSTED`.
    public var providerType: String?
    /// Provider's error code, e.g. `rate_limit_exceeded`.
    public var providerCode: String?
    /// Seconds the client should wait before retrying, when known.
    public var retryAfter: Double?
    /// The request parameter at fault, when known.
    public var param: String?

    public init(_ kind: Kind, _ message: String, upstreamStatus: Int? = nil, providerType: String? = nil,
                providerCode: String? = nil, retryAfter: Double? = nil, param: String? = nil) {
        self.kind = kind
        self.message = message
        self.upstreamStatus = upstreamStatus
        self.providerType = providerType
        self.providerCode = providerCode
        self.retryAfter = retryAfter
        self.param = param
    }

    /// Our API's error `type` (docs/API.md).
    public var apiType: String {
        switch kind {
        case .invalidRequest, .unknownModel: return "invalid_request"
        // Quota shares OpenAI's own 429 so OpenAI-SDK clients behave as they would upstream.
        case .rateLimited, .quotaExceeded: return "rate_limited"
        case .overloaded: return "overloaded"
        case .upstreamTimeout: return "upstream_timeout"
        case .providerNotConfigured: return "provider_not_configured"
        // A rejected provider key is the gateway's fault, not the client's: never a 401 to them.
        case .unauthorized, .upstreamError, .upstreamIncomplete, .malformed, .connectFailed, .dnsFailed, .tlsFailed:
            return "upstream_error"
        }
    }

    /// The HTTP status our API answers with before a stream has started.
    public var httpStatus: Int {
        switch kind {
        case .invalidRequest, .unknownModel: return 400
        case .rateLimited, .quotaExceeded: return 429
        case .overloaded: return 503
        case .upstreamTimeout: return 504
        // Asking for a provider the operator did not set up is a request the client should not
        // repeat unchanged, so 400 rather than 503.
        case .providerNotConfigured: return 400
        case .unauthorized, .upstreamError, .upstreamIncomplete, .malformed, .connectFailed, .dnsFailed, .tlsFailed:
            return 502
        }
    }

    /// Whether retrying the same request later can succeed (drives `Retry-After` and backoff).
    public var isRetryable: Bool {
        switch kind {
        case .rateLimited, .overloaded, .upstreamError, .upstreamTimeout, .upstreamIncomplete, .connectFailed, .dnsFailed, .tlsFailed:
            return true
        default:
            return false
        }
    }

    public var description: String { "\(apiType): \(message)" }

    /// `{"error":{"type":…,"message":…,"param":…}}`, the body of an error response (docs/API.md).
    public func writeResponseBody(to out: inout [UInt8]) {
        writeError(to: &out) { w in if let param { w.field("param", param) } }
    }

    /// `{"error":{"type":…,"message":…,"status":…,"retry_after":…}}`, the data of an `event: error`
    /// frame sent once a stream has started (docs/API.md).
    public func writeStreamErrorData(to out: inout [UInt8]) {
        writeError(to: &out) { w in if let upstreamStatus { w.field("status", upstreamStatus) } }
    }

    /// The shared `{"error":{…}}` envelope; `extra` adds the one member the two shapes differ in.
    private func writeError(to out: inout [UInt8], extra: (inout JSONWriter) -> Void) {
        var w = JSONWriter(appendingTo: out)
        w.beginObject()
        w.key("error")
        w.beginObject()
        w.field("type", apiType)
        w.field("message", message)
        extra(&w)
        if let retryAfter { w.field("retry_after", retryAfter) }
        w.endObject()
        w.endObject()
        out = w.bytes
    }

    static func notConfigured(_ deployment: Deployment) -> ProviderError {
        ProviderError(.providerNotConfigured,
                      "deployment '\(deployment.id)' has no API key: set \(deployment.apiKeyEnv ?? "its key variable")", param: "model")
    }
}
