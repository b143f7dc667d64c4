import HTTP
import JSONCore
import Providers
import Storage

/// A client error before any work: `invalid_request` naming the field at fault.
/// Which error body a surface speaks: docs/API.md's, OpenAI's or Anthropic's.
enum ErrorShape {
    case native
    case openAI
    case anthropic
}

struct ClientError: Error {
    let status: Int
    let type: String
    let message: String
    let param: String?

    static func invalid(_ message: String, param: String?) -> ClientError {
        ClientError(status: 400, type: "invalid_request", message: message, param: param)
    }
}

extension HTTPResponder {
    func respond(_ e: ClientError, shape: ErrorShape = .native, headers: HTTPHeaders = HTTPHeaders()) {
        switch shape {
        case .native:
            respondError(status: e.status, type: e.type, message: e.message, param: e.param, headers: headers)
        case .openAI:
            respondJSON(status: e.status, OpenAIWire.errorBody(e.message, type: OpenAIWire.errorType(e.status), param: e.param, code: e.type),
                        headers: headers)
        case .anthropic:
            // The status stays as it is, 503 included: ChatRelay's own refusals (draining, database
            // away) did nothing, and load balancers retry exactly those 503s on another instance.
            respondJSON(status: e.status, AnthropicWire.errorBody(AnthropicWire.errorType(e.status),
                                                                  message: AnthropicWire.message(e.message, param: e.param)),
                        headers: headers)
        }
    }

    func respond(_ e: ProviderError) {
        var body: [UInt8] = []
        e.writeResponseBody(to: &body)
        var h = HTTPHeaders()
        if let r = e.retryAfter { h.add("Retry-After", String(max(1, Int(r.rounded(.up))))) }
        respondJSON(status: e.httpStatus, body, headers: h)
    }
}

extension ChatService {
    /// The caller behind the request's key, or nil when the request has been dealt with: a 401
    /// sent, or (for a key this worker has not seen yet) `retry` scheduled to run the route again
    /// after the key list has been refreshed, once. The key comes from `Authorization: Bearer`,
    /// or else from `x-api-key` (how Anthropic's older SDKs and many tools send it); when both
    /// are sent, `Authorization` decides.
    /// `queryToken`: also `?access_token=` when no header carries a key, for a route a browser's
    /// `EventSource` opens (it cannot send headers).
    func authorize(_ req: HTTPRequest, _ r: HTTPResponder, shape: ErrorShape = .native, queryToken: Bool = false,
                   retry: @escaping () -> Void) -> Caller? {
        var authorization = req.head.headers["Authorization"]
        let apiKey = req.head.headers["x-api-key"]
        if queryToken, authorization == nil, apiKey == nil, let token = ChatService.queryValue(req.head.query, "access_token") {
            authorization = "Bearer " + token
        }
        guard let secret = APIKeys.presentedSecret(authorization: authorization, apiKey: apiKey) else {
            let msg = authorization == nil && apiKey == nil ? "missing Authorization: Bearer <key> (or x-api-key)" : "invalid API key"
            refuseKey(msg, r, shape)
            return nil
        }
        let digest = APIKeys.sha256(secret)
        let caller: Caller
        if let owner = keys.owner(ofDigest: digest) {
            caller = Caller(owner: owner, key: nil)
        } else if let key = keyDirectory.lookup(hash: APIKeys.hex(digest)) {
            guard !key.record.isRevoked else { refuseKey("this API key has been revoked", r, shape); return nil }
            caller = Caller(owner: KeyStore.owner(ofKeyID: key.record.id), key: key)
        } else if !keyDirectory.isCurrent(since: r.startedAt) {
            // Perhaps created a moment ago on another instance: look once more before refusing.
            keyDirectory.afterNextRefresh { if r.isClientConnected { retry() } }
            return nil
        } else {
            refuseKey("invalid API key", r, shape)
            return nil
        }
        (r.context as? RequestContext)?.owner = caller.owner
        return caller
    }

    private func refuseKey(_ message: String, _ r: HTTPResponder, _ shape: ErrorShape) {
        var h = HTTPHeaders()
        h.add("WWW-Authenticate", "Bearer")
        r.respond(ClientError(status: 401, type: "unauthorized", message: message, param: nil), shape: shape, headers: h)
    }

    /// The request body as a JSON object, or a clear 400/415 already sent.
    func jsonBody(_ req: HTTPRequest, _ r: HTTPResponder, shape: ErrorShape = .native) -> JSONValue? {
        if let ct = req.head.headers["Content-Type"]?.lowercased(), !ct.hasPrefix("application/json") {
            r.respond(ClientError(status: 415, type: "unsupported_media_type", message: "Content-Type must be application/json, not \(ct)", param: nil),
                      shape: shape)
            return nil
        }
        guard !req.body.isEmpty else {
            r.respond(ClientError.invalid("request body must be a JSON object", param: nil), shape: shape)
            return nil
        }
        do {
            let v = try JSONParser.parse(req.body)
            guard v.object != nil else {
                r.respond(ClientError.invalid("request body must be a JSON object", param: nil), shape: shape)
                return nil
            }
            return v
        } catch {
            r.respond(ClientError.invalid("request body is not valid JSON: \(error)", param: nil), shape: shape)
            return nil
        }
    }

    /// The database is down: refuse new turns rather than answer and forget.
    func databaseUnavailable(_ r: HTTPResponder, shape: ErrorShape = .native) {
        var h = HTTPHeaders()
        h.add("Retry-After", "2")
        r.respond(ClientError(status: 503, type: "overloaded", message: "the database is unavailable; try again shortly", param: nil),
                  shape: shape, headers: h)
    }
}

/// Typed field reads that name the field when it has the wrong type.
struct Fields {
    let object: JSONValue

    func string(_ name: String, required: Bool = false, maxBytes: Int = 1 << 20) throws(ClientError) -> String? {
        guard let v = object[name], !v.isNull else {
            if required { throw .invalid("\(name) is required", param: name) }
            return nil
        }
        guard let s = v.string else { throw .invalid("\(name) must be a string", param: name) }
        guard s.utf8.count <= maxBytes else { throw .invalid("\(name) is longer than \(maxBytes) bytes", param: name) }
        try Fields.rejectNUL(s, param: name)
        return s
    }

    /// PostgreSQL text cannot hold U+0000 and libpq would cut the value there: refuse it rather
    /// than store (and send upstream) a silently truncated message.
    static func rejectNUL(_ s: String, param: String) throws(ClientError) {
        if s.utf8.contains(0) { throw .invalid("\(param) must not contain NUL (\\u0000) characters", param: param) }
    }

    func double(_ name: String, _ range: ClosedRange<Double>) throws(ClientError) -> Double? {
        guard let v = object[name], !v.isNull else { return nil }
        guard let d = v.double, range.contains(d) else {
            throw .invalid("\(name) must be a number from \(range.lowerBound) to \(range.upperBound)", param: name)
        }
        return d
    }

    func int(_ name: String, _ range: ClosedRange<Int>) throws(ClientError) -> Int? {
        guard let v = object[name], !v.isNull else { return nil }
        guard let i = v.int, range.contains(Int(i)) else {
            throw .invalid("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)", param: name)
        }
        return Int(i)
    }

    /// A list of model names (`fallbacks`, `models`): at most `max`, each a model name.
    func modelNames(_ name: String, max: Int = 8) throws(ClientError) -> [String]? {
        guard let v = object[name], !v.isNull else { return nil }
        guard let items = v.array, items.count <= max else { throw .invalid("\(name) must be an array of at most \(max) model names", param: name) }
        var out: [String] = []
        for (i, item) in items.enumerated() {
            guard let s = item.string, !s.isEmpty, s.utf8.count <= ModelNames.maxBytes, s.utf8.allSatisfy(ModelNames.isPublicNameByte) else {
                throw .invalid("\(name)[\(i)] must be a model name", param: "\(name)[\(i)]")
            }
            out.append(s)
        }
        return out
    }

    func bool(_ name: String) throws(ClientError) -> Bool? {
        guard let v = object[name], !v.isNull else { return nil }
        guard let b = v.bool else { throw .invalid("\(name) must be true or false", param: name) }
        return b
    }
}
