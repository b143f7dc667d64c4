import HTTP
import Storage

/// The headers that tell a client where its key stands: the IETF `RateLimit-Policy` and
/// `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers) on every surface, and on the
/// OpenAI surface OpenAI's own `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
enum RateLimitHeaders {
    struct Reading {
        let limit: Int64
        let remaining: Int64
        let resetMs: Int64
    }

    /// Only keys with a requests or tokens limit get them; `refusal` sets the refused limit's
    /// remaining to zero (the counters may not show it yet).
    static func add(to h: inout HTTPHeaders, key: KeyRecord, windows: SharedWindows, openAI: Bool, refusal: LimitRefusal? = nil) {
        var policies: [String] = []
        var states: [String] = []
        func reading(_ what: String, _ limit: Int?, _ kind: LimitRefusal.Kind) -> Reading? {
            guard let limit else { return nil }
            let r = windows.reading(KeyLimiter.subject(key, what))
            var out = Reading(limit: Int64(limit), remaining: r?.remaining ?? Int64(limit), resetMs: r?.resetMs ?? KeyLimiter.minuteMs)
            if let refusal, refusal.kind == kind { out = Reading(limit: out.limit, remaining: 0, resetMs: refusal.resetMs) }
            return out
        }
        let requests = reading("rpm", key.limits.rpm, .requests)
        let tokens = reading("tpm", key.limits.tpm, .tokens)
        for (name, r) in [("requests", requests), ("tokens", tokens)] {
            guard let r else { continue }
            policies.append("\"\(name)\";q=\(r.limit);w=60")
            states.append("\"\(name)\";r=\(r.remaining);t=\(KeyLimiter.seconds(r.resetMs))")
        }
        guard !policies.isEmpty else { return }
        h.add("RateLimit-Policy", policies.joined(separator: ", "))
        h.add("RateLimit", states.joined(separator: ", "))
        guard openAI else { return }
        for (name, r) in [("requests", requests), ("tokens", tokens)] {
            guard let r else { continue }
            h.add("x-ratelimit-limit-\(name)", String(r.limit))
            h.add("x-ratelimit-remaining-\(name)", String(r.remaining))
            h.add("x-ratelimit-reset-\(name)", duration(r.resetMs))
        }
    }

    /// As OpenAI writes its resets: `120ms`, `12s`, `1m30s`.
    static func duration(_ ms: Int64) -> String {
        if ms < 1_000 { return "\(max(0, ms))ms" }
        let s = (ms + 999) / 1_000
        return s < 60 ? "\(s)s" : "\(s / 60)m\(s % 60)s"
    }
}
