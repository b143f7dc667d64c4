/// The JSON error shape of api.md, `{"error":{"type":…,"message":…}}`, for errors the HTTP layer
/// itself produces (malformed requests, unknown paths) before any application code runs.
public enum ErrorBody {
    public static func json(type: String, message: String, param: String? = nil) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + message.utf8.count)
        out.append(contentsOf: #"{"error":{"type":""#.utf8)
        appendEscaped(type, to: &out)
        out.append(contentsOf: #"","message":""#.utf8)
        appendEscaped(message, to: &out)
        if let param {
            out.append(contentsOf: #"","param":""#.utf8)
            appendEscaped(param, to: &out)
        }
        out.append(contentsOf: #""}}"#.utf8)
        return out
    }

    /// The error `type` api.md pairs with an HTTP status.
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

    static func appendEscaped(_ s: String, to out: inout [UInt8]) {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        for b in s.utf8 {
            switch b {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(0x6E)
            case 0x0D: out.append(0x5C); out.append(0x72)
            case 0x09: out.append(0x5C); out.append(0x74)
            case 0..<0x20:
                out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xF)]])
            default: out.append(b)
            }
        }
    }
}
