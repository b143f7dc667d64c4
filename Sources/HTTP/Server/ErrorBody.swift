import JSONCore

/// The JSON error shape of docs/API.md, `{"error":{"type":…,"message":…}}`, for errors the HTTP layer
/// itself produces (malformed requests, unknown paths) before any application code runs.
public enum ErrorBody {
    public static func json(type: String, message: String, param: String? = nil) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + message.utf8.count)
        out.append(contentsOf: #"{"error":{"type":""#.utf8)
        JSON.appendEscaped(type, to: &out)
        out.append(contentsOf: #"","message":""#.utf8)
        JSON.appendEscaped(message, to: &out)
        if let param {
            out.append(contentsOf: #"","param":""#.utf8)
            JSON.appendEscaped(param, to: &out)
        }
        out.append(contentsOf: #""}}"#.utf8)
        return out
    }

    /// The error `type` docs/API.md pairs with an HTTP status.
    public static func type(forStatus status: Int) -> String {
        switch status {
        case 400, 411, 414, 431, 505: return "invalid_request"
        case 401: return "unauthorized"
        case 404: return "not_found"
        case 405: return "method_not_allowed"
        case 408: return "request_timeout"
        case 413: return "payload_too_large"
        case 415: return "unsupported_media_type"
        case 429: return "rate_limited"
        case 501: return "not_implemented"
        case 503: return "overloaded"
        default: return "internal"
        }
    }
}
