import HTTP
import Storage

/// The headers that tell a client where its key stands: the IETF `RateLimit-Policy` and
/// `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers) on every surface, and on the
/// OpenAI surface OpenAI's own `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
enum RateLimitHeaders {
    typealias Reading = SharedWindows.Reading

    /// Only keys with a requests or tokens limit get them; `refusal` sets the refused limit's
    /// remaining to zero (the counters may not show it yet).
    static func add(to h: inout HTTPHeaders, key: DirectoryKey, limiter: KeyLimiter, openAI: Bool, refusal: LimitRefusal? = nil) {
        guard let policy = key.policyHeader else { return }
        func reading(_ w: LimitWindow?, _ limit: Int?, _ kind: LimitRefusal.Kind) -> Reading? {
            guard let limit else { return nil }
            if let refusal, refusal.kind == kind { return Reading(limit: Int64(limit), remaining: 0, resetMs: refusal.resetMs) }
            let r = w.flatMap { limiter.windows.reading($0) }
            return Reading(limit: Int64(limit), remaining: r?.remaining ?? Int64(limit), resetMs: r?.resetMs ?? KeyLimiter.minuteMs)
        }
        let requests = reading(limiter.rpmWindow(key), key.record.limits.rpm, .requests)
        let tokens = reading(limiter.tpmWindow(key), key.record.limits.tpm, .tokens)
        var state = ""
        if let r = requests { state = "\"requests\";r=\(r.remaining);t=\(KeyLimiter.seconds(r.resetMs))" }
        if let t = tokens {
            if !state.isEmpty { state += ", " }
            state += "\"tokens\";r=\(t.remaining);t=\(KeyLimiter.seconds(t.resetMs))"
        }
        // Replaced, not added: a turn of several models is admitted once per model, and the
        // response says where the last admission left the key.
        h.replaceOrAdd("RateLimit-Policy", policy)
        h.replaceOrAdd("RateLimit", state)
        guard openAI else { return }
        if let r = requests {
            h.replaceOrAdd("x-ratelimit-limit-requests", String(r.limit))
            h.replaceOrAdd("x-ratelimit-remaining-requests", String(r.remaining))
            h.replaceOrAdd("x-ratelimit-reset-requests", duration(r.resetMs))
        }
        if let t = tokens {
            h.replaceOrAdd("x-ratelimit-limit-tokens", String(t.limit))
            h.replaceOrAdd("x-ratelimit-remaining-tokens", String(t.remaining))
            h.replaceOrAdd("x-ratelimit-reset-tokens", duration(t.resetMs))
        }
    }

    /// As OpenAI writes its resets: `120ms`, `12s`, `1m30s`.
    static func duration(_ ms: Int64) -> String {
        if ms < 1_000 { return "\(max(0, ms))ms" }
        let s = (ms + 999) / 1_000
        return s < 60 ? "\(s)s" : "\(s / 60)m\(s % 60)s"
    }
}
