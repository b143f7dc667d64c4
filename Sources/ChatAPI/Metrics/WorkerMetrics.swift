import HTTP

/// The metrics one worker owns. Only its loop thread touches them, so counting needs no locks or
/// atomics; other workers see them as `MetricsSnapshot` values sent through the loop inboxes.
final class WorkerMetrics {
    let routePatterns: [String]
    let upstream: UpstreamMetrics
    let resilience: ResilienceMetrics
    /// Tokens, cost and refusals, read at scrape time from the usage ledger and the limits.
    let usage: () -> UsageCounts
    private var requests: RequestCounters
    private var requestDurations: HistogramFamily
    private var poolWait = HistogramFamily(labelCount: 1)

    /// `routePatterns`: the router's patterns; one more row counts requests no route matched.
    init(routePatterns: [String], upstream: UpstreamMetrics, resilience: ResilienceMetrics,
         usage: @escaping () -> UsageCounts = { UsageCounts() }) {
        self.routePatterns = routePatterns
        self.upstream = upstream
        self.resilience = resilience
        self.usage = usage
        requests = RequestCounters(routeCount: routePatterns.count + 1)
        requestDurations = HistogramFamily(labelCount: routePatterns.count + 1)
    }

    /// A response finished (or was abandoned): counted with its route, and timed from the
    /// request's start to the response's end (for a stream, the whole stream).
    func requestCompleted(_ r: HTTPResponder, now: UInt64) {
        let route = r.routeIndex >= 0 && r.routeIndex < routePatterns.count ? r.routeIndex : routePatterns.count
        requests.count(route: route, method: RequestCounters.methodIndex(r.head.method), status: r.status)
        requestDurations.observe(route, nanos: now &- r.startedAt)
    }

    func waitedForConnection(nanos: UInt64) {
        poolWait.observe(0, nanos: nanos)
    }

    /// The gauges are read by the caller (they live in the server, service and pool).
    func snapshot(_ g: MetricsGauges) -> MetricsSnapshot {
        MetricsSnapshot(routePatterns: routePatterns, requests: requests.entries, requestDurations: requestDurations,
                        upstreamOutcomes: upstream.outcomes, timeToFirstToken: upstream.timeToFirstToken,
                        tokensRelayed: upstream.tokensRelayed, poolWait: poolWait,
                        gauges: g, resilience: resilience.counts,
                        usage: usage())
    }
}
