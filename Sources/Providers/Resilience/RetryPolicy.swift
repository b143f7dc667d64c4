/// How hard a turn tries before its first token reaches the client (docs/resilience.md). Every
/// field has a default, so a catalog without `retry:` still retries sensibly.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts per turn, over every deployment and fallback model together.
    public var maxAttempts = 6
    /// Further attempts on the same deployment before moving to the next one.
    public var retriesPerDeployment = 1
    /// Wall time from the request's arrival after which no new attempt starts.
    public var budgetMs = 60_000
    public var backoffBaseMs = 250
    public var backoffMaxMs = 8_000
    /// A provider's Retry-After is honoured up to this; a longer one moves on to the next deployment.
    public var maxRetryAfterMs = 30_000

    public init() {}

    /// Exponential backoff with full jitter (a uniform wait in 0…min(max, base·2ⁿ)), or the
    /// provider's Retry-After when it sent one. `retry` counts from 0 for the first retry.
    public func backoffMs(retry: Int, retryAfterSeconds: Double?, random: UInt64) -> Int {
        if let s = retryAfterSeconds, s >= 0 {
            return min(maxRetryAfterMs, Int((s * 1000).rounded(.up)))
        }
        let ceiling = min(backoffMaxMs, backoffBaseMs << min(retry, 20))
        return ceiling <= 0 ? 0 : Int(random % UInt64(ceiling + 1))
    }
}

/// Which failures are worth another attempt: the ones a later or different call can fix.
public enum RetryClassifier {
    /// Connect errors, resets, 408, 429 (not quota), 500, 502, 503, 504, 529 and timeouts are
    /// retried; 400, 401, 403, 404, quota and content-policy refusals never are.
    public static func isRetryable(_ e: ProviderError) -> Bool {
        switch e.kind {
        case .invalidRequest, .unknownModel, .unauthorized, .quotaExceeded, .providerNotConfigured:
            return false
        case .rateLimited, .overloaded, .upstreamTimeout, .connectFailed, .dnsFailed, .tlsFailed, .upstreamIncomplete:
            return true
        case .upstreamError, .malformed:
            guard let status = e.upstreamStatus, status != 200 else { return e.kind == .upstreamError }
            return [408, 429, 500, 502, 503, 504, 529].contains(status)
        }
    }
}
