import HTTP
import Reactor

/// Per-request facts for the access log and for headers every response carries.
final class RequestContext {
    let requestID: String
    var owner: String?
    var model: String?
    var provider: String?
    /// The catalog deployment serving the turn.
    var deployment: String?
    /// The turn's attempts in short, when there was more than one or one failed.
    var attempts: String?
    var ttftMs: Double?
    var tokens: Int?
    var error: String?
    /// Marks for the Server-Timing header.
    var timing = RequestTiming()

    init(requestID: String) { self.requestID = requestID }

    /// The client's X-Request-Id when it is a sane token, else a fresh one.
    static func requestID(from header: String?) -> String {
        if let h = header, !h.isEmpty, h.utf8.count <= 128,
           h.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95 || $0 == 46 || $0 == 58 }) {
            return h
        }
        return APIKeys.hex(SecureRandom.bytes(12))
    }
}

/// CORS from CORS_ORIGINS: pre-flights answered, allowed origins echoed on every response.
struct CORSPolicy {
    let origins: [String]

    var isEnabled: Bool { !origins.isEmpty }

    func allowedOrigin(_ origin: String?) -> String? {
        guard let origin, isEnabled else { return nil }
        if origins.contains("*") { return "*" }
        return origins.contains(origin) ? origin : nil
    }

    /// Answers an OPTIONS pre-flight; returns false when the request is not one.
    func handlePreflight(_ req: HTTPRequest, _ r: HTTPResponder) -> Bool {
        guard req.head.method == .options, req.head.headers["Access-Control-Request-Method"] != nil else { return false }
        var h = HTTPHeaders()
        // Access-Control-Allow-Origin and Vary are already among the responder's extra headers
        // (addHeaders runs for every request); adding them here would send them twice.
        if allowedOrigin(req.head.headers["Origin"]) != nil {
            h.add("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
            h.add("Access-Control-Allow-Headers", req.head.headers["Access-Control-Request-Headers"] ?? "Authorization, Content-Type, X-Request-Id, X-Conversation-Id")
            h.add("Access-Control-Max-Age", "600")
        }
        r.respond(status: 204, headers: h)
        return true
    }

    func addHeaders(for req: HTTPRequestHead, to h: inout HTTPHeaders) {
        guard let o = allowedOrigin(req.headers["Origin"]) else { return }
        h.add("Access-Control-Allow-Origin", o)
        h.add("Access-Control-Expose-Headers", "X-Request-Id, X-Conversation-Id")
        if o != "*" { h.add("Vary", "Origin") }
    }
}
