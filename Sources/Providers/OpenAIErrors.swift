import JSONCore

/// OpenAI error bodies `{"error":{message,type,param,code}}` (docs/wire-formats.md §2.5).
public enum OpenAIErrors {
    public static func mapHTTPError(status: Int, headers: [(String, String)], body: [UInt8]) -> ProviderError {
        var error: ProviderError
        if let object = ErrorMapping.parse(body)?["error"], object["message"] != nil || object["type"] != nil {
            error = fromErrorObject(object, status: status)
        } else {
            error = ProviderError(ErrorMapping.kind(forStatus: status), ErrorMapping.fallbackMessage(.openai, status: status, body: body), upstreamStatus: status)
        }
        error.retryAfter = ErrorMapping.retryAfter(headers: headers)
        return error
    }

    /// Maps the `error` object of an error body or of a mid-stream `{"error":…}` event.
    public static func fromErrorObject(_ object: JSONValue, status: Int?) -> ProviderError {
        let type = object["type"]?.string
        let code = object["code"]?.string
        let message = object["message"]?.string ?? "openai error"
        var param = object["param"]?.string
        let kind: ProviderError.Kind
        if code == "insufficient_quota" || code == "credit_balance_exhausted" || type == "insufficient_quota" {
            kind = .quotaExceeded
        } else if let status {
            kind = ErrorMapping.kind(forStatus: status)
        } else {
            // Mid-stream: no status, only the type (`server_error` is the one observed).
            switch type {
            case "invalid_request_error": kind = .invalidRequest
            case "rate_limit_exceeded", "tokens", "requests": kind = .rateLimited
            default: kind = code == "rate_limit_exceeded" ? .rateLimited : .upstreamError
            }
        }
        if code == "model_not_found" && param == nil { param = "model" }
        return ProviderError(kind, message, upstreamStatus: status ?? 200, providerType: type, providerCode: code, param: param)
    }
}
