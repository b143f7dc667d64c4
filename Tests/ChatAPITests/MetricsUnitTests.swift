import HTTP
import Testing
import Providers
@testable import ChatAPI

@Suite struct MetricsUnit {
    @Test func metricsTokenIsValidated() throws {
        let ok = try ConfigLoader.load(arguments: [], environment: ["CHAT_METRICS_TOKEN": "0123456789abcdef"], dotEnv: nil)
        #expect(ok.metricsToken == "0123456789abcdef")
        let fromDotEnv = try ConfigLoader.load(arguments: [], environment: [:], dotEnv: "CHAT_METRICS_TOKEN=fedcba9876543210\n")
        #expect(fromDotEnv.metricsToken == "fedcba9876543210")
        #expect(try ConfigLoader.load(arguments: [], environment: [:], dotEnv: nil).metricsToken == nil)
        for bad in ["short", "has a space in the middle", String(repeating: "x", count: 513), "tab\there-0123456789"] {
            #expect(throws: ConfigError.self) {
                _ = try ConfigLoader.load(arguments: [], environment: ["CHAT_METRICS_TOKEN": bad], dotEnv: nil)
            }
        }
        #expect(ConfigLoader.usage.contains("CHAT_METRICS_TOKEN"))
    }

    @Test func histogramBucketsAreCumulativeWithInfinity() {
        var h = HistogramFamily(labelCount: 2)
        h.observe(1, nanos: 500_000)          // 0.5 ms: first bucket
        h.observe(1, nanos: 1_000_000)        // exactly 1 ms: le="0.001" still (le is inclusive)
        h.observe(1, nanos: 3_000_000)        // le="0.005"
        h.observe(1, nanos: 120_000_000_000)  // past 60 s: +Inf only
        h.observe(5, nanos: 1)                // out-of-range label: ignored
        let c = h.cumulative(1)
        #expect(c.count == LatencyBuckets.count)
        #expect(c[0] == 2 && c[1] == 2 && c[2] == 3 && c[14] == 3 && c[15] == 4)
        #expect(h.cumulative(0).allSatisfy { $0 == 0 })
        #expect(h.sumNanos[1] == 120_004_500_000)
    }

    @Test func requestCountersKeepLabelsBounded() {
        var r = RequestCounters(routeCount: 3)
        r.count(route: 0, method: RequestCounters.methodIndex(.get), status: 200)
        r.count(route: 0, method: RequestCounters.methodIndex(.get), status: 200)
        r.count(route: -1, method: RequestCounters.methodIndex(.other("BREW")), status: 404)
        r.count(route: 1, method: RequestCounters.methodIndex(.post), status: 0)
        let e = r.entries
        #expect(e[.init(route: 0, method: 0, status: 200)] == 2)
        #expect(e[.init(route: 2, method: 7, status: 404)] == 1)  // unmatched row, method "other"
        #expect(e[.init(route: 1, method: 2, status: 499)] == 1)
        #expect(e.count == 3)
    }

    /// Three loads: start-up, a good reload, then a refused one.
    var catalogStatus: CatalogStatus {
        var c = CatalogStatus(loaded: BuiltInCatalog.make(ProviderConfig()).withVersion(3), at: 1_800_000_100)
        c.source = "models.yaml"
        c.reloadsSucceeded = 2
        c.reloadsFailed = 1
        c.lastReloadSucceeded = false
        return c
    }

    @Test func snapshotsMergeAndRender() {
        func snapshot(_ n: Int) -> MetricsSnapshot {
            let upstream = UpstreamMetrics()
            let resilience = ResilienceMetrics()
            let usage = UsageCounts(byModel: ["m1": UsageLedger.ModelTotals(requests: UInt64(n), promptTokens: 10, completionTokens: 5,
                                                                            costPico: 1_500_000, estimated: 1)],
                                    refused: ["requests": UInt64(n)])
            let m = WorkerMetrics(routePatterns: ["/a", "/b/{id}"], upstream: upstream, resilience: resilience, usage: { usage })
            for _ in 0..<n { upstream.tokenRelayed(.openai) }
            resilience.attemptEnded("dep-a", .failed)
            resilience.attemptEnded("dep-b", .ok)
            resilience.attemptStarted(retry: true)
            resilience.fallback()
            upstream.ended(.anthropic, error: nil, accepted: true)
            m.waitedForConnection(nanos: 2_000_000)
            return m.snapshot(.init(openConnections: n, openStreams: 1, poolInUse: 1, poolIdle: 3, poolQueueLength: 0, draining: n == 2))
        }
        var merged = snapshot(1)
        merged.merge(snapshot(2))
        #expect(merged.workersReporting == 2)
        #expect(merged.gauges.openConnections == 3)
        #expect(merged.gauges.draining)
        let text = String(decoding: PrometheusText.render(merged, ProcessFacts(version: "9.9.9", workers: 2, residentBytes: 1024,
                                                                                 openFileDescriptors: 7, startTimeSeconds: 1_800_000_000.5,
                                                                                 catalog: catalogStatus)), as: UTF8.self)
        #expect(text.contains("chatrelay_tokens_relayed_total{provider=\"openai\"} 3\n"))
        #expect(text.contains("chatrelay_usage_tokens_total{model=\"m1\",type=\"prompt\"} 20\n"))
        #expect(text.contains("chatrelay_usage_cost_usd_total{model=\"m1\"} 0.000003\n"))
        #expect(text.contains("chatrelay_rate_limited_total{limit=\"requests\"} 3\n"))
        #expect(text.contains("chatrelay_upstream_requests_total{provider=\"anthropic\",outcome=\"complete\"} 2\n"))
        #expect(text.contains("chatrelay_db_pool_wait_seconds_bucket{le=\"0.0025\"} 2\n"))
        #expect(text.contains("chatrelay_db_pool_wait_seconds_count 2\n"))
        #expect(text.contains("chatrelay_catalog_version{source=\"models.yaml\"} 3\n"))
        #expect(text.contains("chatrelay_upstream_attempts_total{deployment=\"dep-a\",outcome=\"failed\"} 2\n"))
        #expect(text.contains("chatrelay_upstream_attempts_total{deployment=\"dep-b\",outcome=\"ok\"} 2\n"))
        #expect(text.contains("chatrelay_retries_total 2\n"))
        #expect(text.contains("chatrelay_fallbacks_total 2\n"))
        #expect(text.contains("chatrelay_catalog_last_reload_success 0\n"))
        #expect(text.contains("chatrelay_catalog_reloads_total{outcome=\"success\"} 2\n"))
        #expect(text.contains("chatrelay_catalog_reloads_total{outcome=\"failure\"} 1\n"))
        #expect(text.contains("chatrelay_db_pool_connections{state=\"idle\"} 6\n"))
        #expect(text.contains("chatrelay_draining 1\n"))
        #expect(text.contains("chatrelay_build_info{version=\"9.9.9\"} 1\n"))
        #expect(text.contains("process_start_time_seconds 1800000000.5\n"))
        #expect(PrometheusText.escapeLabel("a\"b\\c\nd") == "a\\\"b\\\\c\\nd")
    }

    @Test func serverTimingLeavesOutTheProviderWait() {
        func header(_ start: UInt64, _ head: UInt64, _ t: RequestTiming?) -> String {
            var out: [UInt8] = []
            ServerTiming.append(start: start, headAt: head, timing: t, to: &out)
            return String(decoding: out, as: UTF8.self)
        }
        #expect(header(1_000, 1_235_500, nil) == "Server-Timing: gw;dur=1.235\r\n")
        #expect(header(0, 12_345_678_901, nil) == "Server-Timing: gw;dur=12345.679\r\n")
        // 2 ms of database work, the upstream called at 3 ms and answering at 203 ms, head at 204 ms.
        var t = RequestTiming()
        t.databaseNanos = 2_000_000
        t.upstreamStartedAt = 3_000_000
        t.upstreamAnsweredAt = 203_000_000
        #expect(header(0, 204_000_000, t) == "Server-Timing: gw;dur=4.000, db;dur=2.000, upstream;dur=200.000\r\n")
        // The head went out on the hold timer before the provider answered: no upstream figure.
        t.upstreamAnsweredAt = 0
        #expect(header(0, 1_003_000_000, t) == "Server-Timing: gw;dur=3.000, db;dur=2.000\r\n")
        // Non-streamed: the wait lasts until the provider's stream ended; storing after that is the gateway's.
        t.upstreamStreamed = false
        t.upstreamAnsweredAt = 100_000_000
        t.upstreamEndedAt = 900_000_000
        #expect(header(0, 905_000_000, t) == "Server-Timing: gw;dur=8.000, db;dur=2.000, upstream;dur=97.000\r\n")
    }
}
