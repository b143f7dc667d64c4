import JSONCore

/// A fault switched on at runtime for one deployment's tag (`PUT /faults/{tag}`). Unlike a
/// `[mock fault=…]` directive it leaves the prompt alone: the gateway sends the same body to every
/// deployment, so only something outside the body can make deployment A fail while B answers,
/// and a test can make A fail or recover while the gateway keeps running.
struct FaultRule {
    enum Kind: String {
        case status, reset, midstream
        case slowFirst = "slow_first"
        case hang
    }

    /// What to do with a header the provider's error already carries.
    enum HeaderOverride {
        case set(String)
        /// `null` in the body: a test of a gateway's own backoff needs a 429 without a hint.
        case remove
    }

    var kind: Kind
    /// For `.status`: the HTTP status answered.
    var status = 0
    var retryAfter: HeaderOverride?
    var retryAfterMs: HeaderOverride?
    /// For `.midstream`: tokens streamed before the error.
    var after = 2
    /// For `.slowFirst`: the silence before the first event.
    var firstDelayMs = 1000.0
    /// Requests still to fault; nil: every one until the rule is removed. A spent rule (0) stays
    /// listed, inert, so `GET /faults` still shows what it did.
    var remaining: Int?
    /// Requests the rule was applied to.
    var applied = 0

    /// How the request log names the fault: the status, or the kind.
    var label: String { kind == .status ? String(status) : kind.rawValue }

    struct Invalid: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    /// The rule a `PUT /faults/{tag}` body describes. Unknown fields are refused rather than
    /// ignored: a misspelt `retry-after` would otherwise pass silently and the test prove nothing.
    static func parse(_ body: [UInt8]) throws(Invalid) -> FaultRule {
        guard let json = try? JSONParser.parse(body), let members = json.object else {
            throw Invalid("the body must be a JSON object")
        }
        var rule = FaultRule(kind: .status)
        var kindName: String?
        var status: Int?
        for (key, value) in members {
            switch key {
            case "kind":
                guard let s = value.string else { throw Invalid("kind must be a string") }
                kindName = s
            case "status":
                guard let n = value.int, (400...599).contains(n) else { throw Invalid("status must be an integer from 400 to 599") }
                status = Int(n)
            case "retry_after": rule.retryAfter = try headerOverride(value, key)
            case "retry_after_ms": rule.retryAfterMs = try headerOverride(value, key)
            case "times":
                guard let n = value.int, n >= 1, n <= 1_000_000_000 else { throw Invalid("times must be a positive integer") }
                rule.remaining = Int(n)
            case "after":
                guard let n = value.int, n >= 0, n <= 100_000 else { throw Invalid("after must be an integer from 0 to 100000") }
                rule.after = Int(n)
            case "first_delay_ms":
                guard let ms = value.double, ms >= 0, ms <= 3_600_000 else { throw Invalid("first_delay_ms must be a number from 0 to 3600000") }
                rule.firstDelayMs = ms
            default:
                throw Invalid("unknown field \(key)")
            }
        }
        if let kindName {
            guard let kind = Kind(rawValue: kindName) else {
                throw Invalid("unknown kind \(kindName): use status, reset, midstream, slow_first or hang")
            }
            rule.kind = kind
        } else if status == nil {
            throw Invalid("give a status or a kind")
        }
        if rule.kind == .status {
            guard let status else { throw Invalid("kind status needs a status") }
            rule.status = status
        }
        return rule
    }

    /// A header value as given (a string, or an integer for seconds), or removal for `null`.
    /// Line breaks are refused: they would end the header and corrupt the response head.
    private static func headerOverride(_ value: JSONValue, _ key: String) throws(Invalid) -> HeaderOverride {
        if value.isNull { return .remove }
        let text: String
        if let s = value.string {
            text = s
        } else if case .int(let n) = value {
            text = String(n)
        } else {
            throw Invalid("\(key) must be a string, an integer or null")
        }
        guard !text.isEmpty, !text.utf8.contains(where: { $0 == 13 || $0 == 10 }) else {
            throw Invalid("\(key) must be a non-empty single-line value")
        }
        return .set(text)
    }

    /// One rule as `GET /faults` lists it: only the fields its kind uses.
    func write(to w: inout JSONWriter) {
        w.beginObject()
        w.field("kind", kind.rawValue)
        switch kind {
        case .status: w.field("status", status)
        case .midstream: w.field("after", after)
        case .slowFirst: w.field("first_delay_ms", firstDelayMs)
        case .reset, .hang: break
        }
        for (name, value) in [("retry_after", retryAfter), ("retry_after_ms", retryAfterMs)] {
            switch value {
            case .set(let v): w.field(name, v)
            case .remove: w.key(name); w.null()
            case nil: break
            }
        }
        if let remaining { w.field("remaining", remaining) }
        w.field("applied", applied)
        w.endObject()
    }
}
