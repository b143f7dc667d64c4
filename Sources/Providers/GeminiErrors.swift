import JSONCore

/// Gemini error bodies: google.rpc.Status `{"error":{code,message,status,details[]}}` (docs/wire-formats.md §4.5).
public enum GeminiErrors {
    public static func mapHTTPError(status: Int, headers: [(String, String)], body: [UInt8]) -> ProviderError {
        var error: ProviderError
        if let value = ErrorMapping.parse(body), value["error"]?["message"] != nil || value["error"]?["status"] != nil {
            error = fromBody(value, status: status)
        } else {
            error = ProviderError(ErrorMapping.kind(forStatus: status), ErrorMapping.fallbackMessage(.gemini, status: status, body: body), upstreamStatus: status)
        }
        // Gemini puts its hint in the body (RetryInfo); a header, if one ever appears, is fresher.
        if let header = ErrorMapping.retryAfter(headers: headers) { error.retryAfter = header }
        return error
    }

    /// Maps an error body or a mid-stream `{"error":…}` chunk.
    public static func fromBody(_ value: JSONValue, status: Int?) -> ProviderError {
        let object = value["error"] ?? .null
        let rpcStatus = object["status"]?.string
        let message = object["message"]?.string ?? "gemini error"
        let details = object["details"]?.array ?? []
        var reason: String?
        var retryDelay: Double?
        var perDayQuota = false
        for detail in details {
            let type = detail["@type"]?.string ?? ""
            if type.hasSuffix("google.rpc.ErrorInfo") {
                reason = detail["reason"]?.string
            } else if type.hasSuffix("google.rpc.RetryInfo") {
                retryDelay = detail["retryDelay"]?.string.flatMap(parseDuration)
            } else if type.hasSuffix("google.rpc.QuotaFailure") {
                for violation in detail["violations"]?.array ?? [] where violation["quotaId"]?.string?.contains("PerDay") == true {
                    perDayQuota = true
                }
            }
        }
        let httpStatus = status ?? object["code"]?.int.map { Int($0) }
        let kind: ProviderError.Kind
        switch rpcStatus {
        // A bad key is a 400 INVALID_ARGUMENT, told apart only by ErrorInfo's reason.
        case "INVALID_ARGUMENT": kind = reason == "API_KEY_INVALID" ? .unauthorized : .invalidRequest
        case "FAILED_PRECONDITION", "NOT_FOUND", "OUT_OF_RANGE": kind = .invalidRequest
        case "PERMISSION_DENIED", "UNAUTHENTICATED": kind = .unauthorized
        case "RESOURCE_EXHAUSTED":
            // Follow Google's own hint: a RetryInfo means waiting helps; a daily quota without one does not.
            if httpStatus == 402 {
                kind = .quotaExceeded
            } else if retryDelay == nil && perDayQuota {
                kind = .quotaExceeded
            } else {
                kind = .rateLimited
            }
        case "UNAVAILABLE": kind = .overloaded
        case "DEADLINE_EXCEEDED": kind = .upstreamTimeout
        case "INTERNAL", "CANCELLED", "UNKNOWN": kind = .upstreamError
        default: kind = httpStatus.map(ErrorMapping.kind(forStatus:)) ?? .upstreamError
        }
        return ProviderError(kind, message, upstreamStatus: status, providerType: rpcStatus, providerCode: reason, retryAfter: retryDelay)
    }

    /// google.protobuf.Duration in JSON: decimal seconds with an `s` suffix, e.g. "23s", "1.5s".
    static func parseDuration(_ text: String) -> Double? {
        guard text.hasSuffix("s"), let seconds = Double(text.dropLast()), seconds >= 0 else { return nil }
        return seconds
    }
}
