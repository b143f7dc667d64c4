/// Per-worker counters of retries, fallbacks, hedges and attempts by deployment, updated on the
/// loop thread only and merged across workers at scrape time.
final class ResilienceMetrics {
    private(set) var counts = ResilienceCounts()

    func attemptStarted(retry: Bool) { if retry { counts.retries &+= 1 } }
    func fallback() { counts.fallbacks &+= 1 }
    func hedgeStarted() { counts.hedgesStarted &+= 1 }
    func hedgeWon() { counts.hedgesWon &+= 1 }
    func restarted() { counts.restarts &+= 1 }

    func attemptEnded(_ deployment: String, _ outcome: AttemptRecord.Outcome) {
        counts.attempts[ResilienceCounts.Key(deployment: deployment, outcome: outcome.rawValue), default: 0] &+= 1
    }
}

/// The values behind ResilienceMetrics, as sent between workers.
struct ResilienceCounts: Sendable {
    struct Key: Hashable, Sendable {
        var deployment: String
        var outcome: String
    }

    /// Bounded by the catalog: deployments × three outcomes.
    var attempts: [Key: UInt64] = [:]
    var retries: UInt64 = 0
    var fallbacks: UInt64 = 0
    var hedgesStarted: UInt64 = 0
    var hedgesWon: UInt64 = 0
    var restarts: UInt64 = 0

    mutating func merge(_ o: ResilienceCounts) {
        for (k, v) in o.attempts { attempts[k, default: 0] &+= v }
        retries &+= o.retries
        fallbacks &+= o.fallbacks
        hedgesStarted &+= o.hedgesStarted
        hedgesWon &+= o.hedgesWon
        restarts &+= o.restarts
    }
}

/// A deployment's breaker and load when scraped (read from the instance-wide shared state).
struct BreakerReading: Sendable {
    var deployment: String
    var state: Int
    var inFlight: Int
}
