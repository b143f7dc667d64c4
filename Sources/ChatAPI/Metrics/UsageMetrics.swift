/// Requests refused by a key's limits, per limit; counted on the loop thread, merged at scrape.
final class LimitMetrics {
    private(set) var refused: [String: UInt64] = [:]
    /// Limited keys' admissions decided from the worker's copies, and those that waited for the
    /// database (a claim or a read): the second should stay near zero under steady load.
    private(set) var admissionsLocal: UInt64 = 0
    private(set) var admissionsWaited: UInt64 = 0

    func refused(_ kind: LimitRefusal.Kind) { refused[kind.rawValue, default: 0] &+= 1 }
    func admittedLocally() { admissionsLocal &+= 1 }
    func admittedAfterDatabase() { admissionsWaited &+= 1 }
}

/// Tokens, cost and refusals as sent between workers for /metrics.
struct UsageCounts: Sendable {
    var byModel: [String: UsageLedger.ModelTotals] = [:]
    var refused: [String: UInt64] = [:]
    var ledgerRowsDropped: UInt64 = 0
    var admissionsLocal: UInt64 = 0
    var admissionsWaited: UInt64 = 0
    /// Statements the limits sent (claims, reads, syncs).
    var limitStatements: UInt64 = 0
    /// Batched progress writes of answers in progress (resumable streams).
    var progressWrites: UInt64 = 0
    /// The response cache: hits, misses, requests joined to an identical answer in flight, text
    /// bytes served from the cache, and entries written.
    var cache = CacheCounts()
    /// Upstream transfers paused because their client read slowly (backpressure).
    var upstreamPauses: UInt64 = 0

    mutating func merge(_ o: UsageCounts) {
        for (m, t) in o.byModel {
            var mine = byModel[m] ?? UsageLedger.ModelTotals()
            mine.requests &+= t.requests
            mine.promptTokens &+= t.promptTokens
            mine.completionTokens &+= t.completionTokens
            mine.costPico &+= t.costPico
            mine.estimated &+= t.estimated
            byModel[m] = mine
        }
        for (k, v) in o.refused { refused[k, default: 0] &+= v }
        ledgerRowsDropped &+= o.ledgerRowsDropped
        admissionsLocal &+= o.admissionsLocal
        admissionsWaited &+= o.admissionsWaited
        limitStatements &+= o.limitStatements
        progressWrites &+= o.progressWrites
        cache.hits &+= o.cache.hits
        cache.misses &+= o.cache.misses
        cache.joins &+= o.cache.joins
        cache.bytesServed &+= o.cache.bytesServed
        cache.stores &+= o.cache.stores
        upstreamPauses &+= o.upstreamPauses
    }
}

struct CacheCounts: Sendable {
    var hits: UInt64 = 0
    var misses: UInt64 = 0
    var joins: UInt64 = 0
    var bytesServed: UInt64 = 0
    var stores: UInt64 = 0
}
