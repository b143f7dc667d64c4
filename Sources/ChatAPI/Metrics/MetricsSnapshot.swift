/// One worker's metrics as plain values, safe to send to the worker answering /metrics; several
/// merge into the process's view (counters and gauges add up, `draining` is true if any drains).
struct MetricsSnapshot: Sendable {
    var routePatterns: [String]
    var requests: [RequestCounters.Key: UInt64]
    /// By route pattern index; the last row is `unmatched`.
    var requestDurations: HistogramFamily
    /// Provider × outcome (`UpstreamOutcome` order).
    var upstreamOutcomes: [UInt64]
    var timeToFirstToken: HistogramFamily
    var tokensRelayed: [UInt64]
    var poolWait: HistogramFamily
    var gauges: MetricsGauges
    var resilience = ResilienceCounts()
    var usage = UsageCounts()
    /// Workers whose numbers are in here.
    var workersReporting = 1

    mutating func merge(_ o: MetricsSnapshot) {
        for (k, v) in o.requests { requests[k, default: 0] &+= v }
        requestDurations.merge(o.requestDurations)
        for i in upstreamOutcomes.indices where i < o.upstreamOutcomes.count { upstreamOutcomes[i] &+= o.upstreamOutcomes[i] }
        timeToFirstToken.merge(o.timeToFirstToken)
        for i in tokensRelayed.indices where i < o.tokensRelayed.count { tokensRelayed[i] &+= o.tokensRelayed[i] }
        poolWait.merge(o.poolWait)
        gauges.add(o.gauges)
        resilience.merge(o.resilience)
        usage.merge(o.usage)
        workersReporting += o.workersReporting
    }
}

/// What a worker's metrics read at scrape time from the server, the turns and the pool.
struct MetricsGauges: Sendable {
    var openConnections: Int
    var openStreams: Int
    var poolInUse: Int
    var poolIdle: Int
    var poolQueueLength: Int
    var draining: Bool
    /// Log lines dropped because stdout's reader fell behind (a counter, summed like the gauges).
    var logLinesDropped: UInt64 = 0
    /// Answers in the journals waiting for the database, answers journaled, and journal appends
    /// that failed (counters, summed like the gauges).
    var journalAnswers = 0
    var journalAppends: UInt64 = 0
    var journalFailures: UInt64 = 0

    /// Another worker's gauges: sums, and draining when any worker is.
    mutating func add(_ o: MetricsGauges) {
        openConnections += o.openConnections
        openStreams += o.openStreams
        poolInUse += o.poolInUse
        poolIdle += o.poolIdle
        poolQueueLength += o.poolQueueLength
        draining = draining || o.draining
        logLinesDropped &+= o.logLinesDropped
        journalAnswers += o.journalAnswers
        journalAppends &+= o.journalAppends
        journalFailures &+= o.journalFailures
    }
}
