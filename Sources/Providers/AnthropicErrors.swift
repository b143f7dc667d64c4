import JSONCore

/// Anthropic error bodies `{"type":"error","error":{type,message,details?},"request_id"}` (docs/wire-formats.md §3.5).
public enum AnthropicErrors {
    public static func mapHTTPError(status: Int, headers: [(String, String)], body: [UInt8]) -> ProviderError {
        var error: ProviderError
        if let value = ErrorMapping.parse(body), value["error"]?["type"] != nil {
            error = fromBody(value, status: status)
        } else {
            error = ProviderError(ErrorMapping.kind(forStatus: status), ErrorMapping.fallbackMessage(.anthropic, status: status, body: body), upstreamStatus: status)
        }
        error.retryAfter = ErrorMapping.retryAfter(headers: headers)
        return error
    }

    /// Maps an error body or the data of a mid-stream `event: error`.
    public static func fromBody(_ value: JSONValue, status: Int?) -> ProviderError {
        let object = value["error"] ?? .null
        let type = object["type"]?.string
        let message = object["message"]?.string ?? "anthropic error"
        let detailCode = object["details"]?["error_code"]?.string
        let kind: ProviderError.Kind
        switch type {
        case "invalid_request_error":
            // Exhausted credit is reported as a 400 invalid request.
            kind = message.contains("credit balance") ? .quotaExceeded : .invalidRequest
        case "authentication_error", "permission_error": kind = .unauthorized
        case "billing_error": kind = .quotaExceeded
        case "not_found_error", "request_too_large": kind = .invalidRequest
        case "rate_limit_error":
            // Spend caps come as 429s too, but waiting does not lift them.
            kind = detailCode?.contains("spend_limit") == true ? .quotaExceeded : .rateLimited
        case "api_error": kind = .upstreamError
        case "timeout_error": kind = .upstreamTimeout
        case "overloaded_error": kind = .overloaded
        default: kind = status.map(ErrorMapping.kind(forStatus:)) ?? .upstreamError
        }
        return ProviderError(kind, message, upstreamStatus: status, providerType: type, providerCode: detailCode)
    }
}
