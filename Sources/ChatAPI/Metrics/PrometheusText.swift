import Providers

/// Facts about the whole process, read once per scrape by the worker answering it.
struct ProcessFacts {
    var version: String
    var workers: Int
    var residentBytes: UInt64
    var openFileDescriptors: Int
    var startTimeSeconds: Double
    var catalog: CatalogStatus
    var breakers: [BreakerReading] = []
}

/// Renders merged metrics in the Prometheus text exposition format 0.0.4. Runs once per scrape,
/// so it may build strings freely; the counting side never does.
struct PrometheusText {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private var out = ""

    static func render(_ s: MetricsSnapshot, _ p: ProcessFacts) -> [UInt8] {
        var t = PrometheusText()
        t.out.reserveCapacity(16 * 1024)
        t.http(s)
        t.upstream(s)
        t.database(s)
        t.process(s, p)
        return Array(t.out.utf8)
    }

    // MARK: Families

    private mutating func http(_ s: MetricsSnapshot) {
        let routes = s.routePatterns + ["unmatched"]
        family("chatrelay_http_requests_total", "counter",
               "HTTP requests answered, by matched route pattern (unmatched for 404s), method and status; 499: the client left before a response.")
        for key in s.requests.keys.sorted() {
            guard let n = s.requests[key] else { continue }
            let route = key.route < routes.count ? routes[key.route] : "unmatched"
            let method = key.method < RequestCounters.methodNames.count ? RequestCounters.methodNames[key.method] : "other"
            sample("chatrelay_http_requests_total", [("route", route), ("method", method), ("status", String(key.status))], n)
        }
        family("chatrelay_http_request_duration_seconds", "histogram",
               "Time from the request's arrival to the end of its response (for a stream, the whole stream), by route pattern.")
        for (i, route) in routes.enumerated() where i < s.requestDurations.labelCount {
            histogram("chatrelay_http_request_duration_seconds", ("route", route), s.requestDurations, i, skipEmpty: true)
        }
        family("chatrelay_open_connections", "gauge", "Client connections open now.")
        sample("chatrelay_open_connections", [], s.gauges.openConnections)
        family("chatrelay_open_streams", "gauge", "Chat turns in progress now (/api/v1/chat and /v1/chat/completions).")
        sample("chatrelay_open_streams", [], s.gauges.openStreams)
        family("chatrelay_draining", "gauge", "1 once the server is draining after SIGTERM, else 0.")
        sample("chatrelay_draining", [], s.gauges.draining ? 1 : 0)
    }

    private mutating func upstream(_ s: MetricsSnapshot) {
        let providers = ProviderKind.metricsNames
        family("chatrelay_upstream_requests_total", "counter",
               "Requests to model providers by how they ended: complete, error, cancelled, timeout, or rejected (a non-200 status before the stream).")
        for (pi, provider) in providers.enumerated() {
            for outcome in UpstreamOutcome.allCases {
                let i = pi * UpstreamOutcome.count + outcome.rawValue
                guard i < s.upstreamOutcomes.count else { continue }
                sample("chatrelay_upstream_requests_total", [("provider", provider), ("outcome", outcome.name)], s.upstreamOutcomes[i])
            }
        }
        family("chatrelay_time_to_first_token_seconds", "histogram",
               "Time from the chat request's arrival to the first text from the provider.")
        for (pi, provider) in providers.enumerated() where pi < s.timeToFirstToken.labelCount {
            histogram("chatrelay_time_to_first_token_seconds", ("provider", provider), s.timeToFirstToken, pi, skipEmpty: false)
        }
        family("chatrelay_tokens_relayed_total", "counter",
               "Text chunks (token events) received from the provider while the client was connected, streamed to it or gathered into its non-streamed answer.")
        for (pi, provider) in providers.enumerated() where pi < s.tokensRelayed.count {
            sample("chatrelay_tokens_relayed_total", [("provider", provider)], s.tokensRelayed[pi])
        }
    }

    private mutating func database(_ s: MetricsSnapshot) {
        family("chatrelay_db_pool_connections", "gauge", "PostgreSQL pool connections by state, all workers.")
        sample("chatrelay_db_pool_connections", [("state", "in_use")], s.gauges.poolInUse)
        sample("chatrelay_db_pool_connections", [("state", "idle")], s.gauges.poolIdle)
        family("chatrelay_db_pool_queue_length", "gauge", "Database work waiting for a pool connection now.")
        sample("chatrelay_db_pool_queue_length", [], s.gauges.poolQueueLength)
        family("chatrelay_db_pool_wait_seconds", "histogram", "Time database work waited for a pool connection (0 when one was idle).")
        histogram("chatrelay_db_pool_wait_seconds", nil, s.poolWait, 0, skipEmpty: false)
    }

    private mutating func process(_ s: MetricsSnapshot, _ p: ProcessFacts) {
        family("chatrelay_build_info", "gauge", "Always 1; the version label names the running build.")
        sample("chatrelay_build_info", [("version", p.version)], 1)
        family("chatrelay_workers", "gauge", "Worker threads (event loops) configured.")
        sample("chatrelay_workers", [], p.workers)
        let r = s.resilience
        family("chatrelay_upstream_attempts_total", "counter", "Upstream attempts by catalog deployment and outcome (ok, failed, cancelled).")
        for (k, v) in r.attempts.sorted(by: { ($0.key.deployment, $0.key.outcome) < ($1.key.deployment, $1.key.outcome) }) {
            sample("chatrelay_upstream_attempts_total", [("deployment", k.deployment), ("outcome", k.outcome)], v)
        }
        family("chatrelay_retries_total", "counter", "Attempts that repeated a failed one (same or another deployment).")
        sample("chatrelay_retries_total", [], r.retries)
        family("chatrelay_fallbacks_total", "counter", "Turns moved on to a fallback model.")
        sample("chatrelay_fallbacks_total", [], r.fallbacks)
        family("chatrelay_hedges_total", "counter", "Hedged attempts started, and those whose answer won.")
        sample("chatrelay_hedges_total", [("result", "started")], r.hedgesStarted)
        sample("chatrelay_hedges_total", [("result", "won")], r.hedgesWon)
        family("chatrelay_midstream_restarts_total", "counter", "Answers restarted on another deployment after a mid-stream failure.")
        sample("chatrelay_midstream_restarts_total", [], r.restarts)
        let u = s.usage
        let models = u.byModel.keys.sorted()
        family("chatrelay_usage_requests_total", "counter", "Answers billed per public model (finished, cancelled or failed alike).")
        for m in models { sample("chatrelay_usage_requests_total", [("model", m)], u.byModel[m]?.requests ?? 0) }
        family("chatrelay_usage_tokens_total", "counter", "Tokens billed per public model: the provider's counts, else the gateway's estimate.")
        for m in models {
            sample("chatrelay_usage_tokens_total", [("model", m), ("type", "prompt")], u.byModel[m]?.promptTokens ?? 0)
            sample("chatrelay_usage_tokens_total", [("model", m), ("type", "completion")], u.byModel[m]?.completionTokens ?? 0)
        }
        family("chatrelay_usage_cost_usd_total", "counter", "Cost billed per public model in USD, from the catalog's prices.")
        for m in models { sampleText("chatrelay_usage_cost_usd_total", [("model", m)], USD.format(Int64(clamping: u.byModel[m]?.costPico ?? 0))) }
        family("chatrelay_usage_estimated_total", "counter", "Answers whose tokens were counted by the gateway (the provider sent no usage).")
        for m in models { sample("chatrelay_usage_estimated_total", [("model", m)], u.byModel[m]?.estimated ?? 0) }
        family("chatrelay_rate_limited_total", "counter", "Requests refused by a key's limit (requests, tokens, budget, streams).")
        for k in ["requests", "tokens", "budget", "streams"] { sample("chatrelay_rate_limited_total", [("limit", k)], u.refused[k] ?? 0) }
        family("chatrelay_limit_admissions_total", "counter", "Admissions of keys with limits: decided from the worker's copies (local) or after a database round trip (database).")
        sample("chatrelay_limit_admissions_total", [("path", "local")], u.admissionsLocal)
        sample("chatrelay_limit_admissions_total", [("path", "database")], u.admissionsWaited)
        family("chatrelay_limit_statements_total", "counter", "Statements the limits sent to PostgreSQL (claims, reads, batched syncs, stream slots).")
        sample("chatrelay_limit_statements_total", [], u.limitStatements)
        family("chatrelay_progress_writes_total", "counter", "Batched writes of the text of answers in progress (one statement per worker per interval at most).")
        sample("chatrelay_progress_writes_total", [], u.progressWrites)
        family("chatrelay_upstream_pauses_total", "counter", "Upstream transfers paused because their client read more slowly than the provider wrote (backpressure).")
        sample("chatrelay_upstream_pauses_total", [], u.upstreamPauses)
        family("chatrelay_cache_hits_total", "counter", "Requests answered from the response cache, with no upstream call.")
        sample("chatrelay_cache_hits_total", [], u.cache.hits)
        family("chatrelay_cache_misses_total", "counter", "Cacheable requests the cache did not have (or was told not to look up): answered live.")
        sample("chatrelay_cache_misses_total", [], u.cache.misses)
        family("chatrelay_cache_joins_total", "counter", "Requests joined to an identical answer already streaming on the same worker (one upstream call for all).")
        sample("chatrelay_cache_joins_total", [], u.cache.joins)
        family("chatrelay_cache_served_bytes_total", "counter", "Bytes of answer text served from the response cache.")
        sample("chatrelay_cache_served_bytes_total", [], u.cache.bytesServed)
        family("chatrelay_cache_stores_total", "counter", "Answers written to the response cache.")
        sample("chatrelay_cache_stores_total", [], u.cache.stores)
        family("chatrelay_usage_rows_dropped_total", "counter", "Usage ledger rows dropped because too many waited for the database.")
        sample("chatrelay_usage_rows_dropped_total", [], u.ledgerRowsDropped)
        family("chatrelay_breaker_state", "gauge", "Circuit breaker per deployment: 0 closed, 1 open, 2 half-open.")
        for b in p.breakers { sample("chatrelay_breaker_state", [("deployment", b.deployment)], b.state) }
        family("chatrelay_deployment_streams_in_flight", "gauge", "Upstream streams in flight per deployment, all workers.")
        for b in p.breakers { sample("chatrelay_deployment_streams_in_flight", [("deployment", b.deployment)], b.inFlight) }
        let c = p.catalog
        family("chatrelay_catalog_version", "gauge", "Version of the model catalog in force (1 at start-up, +1 per successful reload).")
        sample("chatrelay_catalog_version", [("source", c.source)], c.version)
        family("chatrelay_catalog_models", "gauge", "Models in the catalog in force.")
        sample("chatrelay_catalog_models", [], c.models)
        family("chatrelay_catalog_last_reload_success", "gauge", "1 when the last catalog load (start-up or SIGHUP) succeeded, 0 when it was refused.")
        sample("chatrelay_catalog_last_reload_success", [], c.lastReloadSucceeded ? 1 : 0)
        family("chatrelay_catalog_last_reload_timestamp_seconds", "gauge", "When the catalog was last loaded or a reload was refused, since the Unix epoch.")
        sampleText("chatrelay_catalog_last_reload_timestamp_seconds", [], format(c.lastReloadAt))
        family("chatrelay_catalog_reloads_total", "counter", "SIGHUP catalog reloads by outcome.")
        sample("chatrelay_catalog_reloads_total", [("outcome", "success")], c.reloadsSucceeded)
        sample("chatrelay_catalog_reloads_total", [("outcome", "failure")], c.reloadsFailed)
        family("chatrelay_log_lines_dropped_total", "counter",
               "Log lines dropped because the reader of stdout fell too far behind (each worker keeps up to 1 MiB waiting).")
        sample("chatrelay_log_lines_dropped_total", [], s.gauges.logLinesDropped)
        family("chatrelay_journal_answers", "gauge", "Finished answers kept in the journal until the database takes them.")
        sample("chatrelay_journal_answers", [], s.gauges.journalAnswers)
        family("chatrelay_journal_appends_total", "counter", "Answers journaled because the database was away.")
        sample("chatrelay_journal_appends_total", [], s.gauges.journalAppends)
        family("chatrelay_journal_failures_total", "counter", "Answers that could not be journaled (they waited in memory only).")
        sample("chatrelay_journal_failures_total", [], s.gauges.journalFailures)
        family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
        sample("process_resident_memory_bytes", [], p.residentBytes)
        family("process_open_fds", "gauge", "Number of open file descriptors.")
        sample("process_open_fds", [], p.openFileDescriptors)
        family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch in seconds.")
        sampleText("process_start_time_seconds", [], format(p.startTimeSeconds))
    }

    // MARK: Lines

    private mutating func family(_ name: String, _ type: String, _ help: String) {
        out += "# HELP \(name) \(PrometheusText.escapeHelp(help))\n# TYPE \(name) \(type)\n"
    }

    private mutating func sample<N: BinaryInteger>(_ name: String, _ labels: [(String, String)], _ value: N) {
        sampleText(name, labels, String(value))
    }

    private mutating func sampleText(_ name: String, _ labels: [(String, String)], _ value: String) {
        out += name
        if !labels.isEmpty {
            out += "{"
            for (i, (k, v)) in labels.enumerated() {
                if i > 0 { out += "," }
                out += "\(k)=\"\(PrometheusText.escapeLabel(v))\""
            }
            out += "}"
        }
        out += " \(value)\n"
    }

    private mutating func histogram(_ name: String, _ label: (String, String)?, _ h: HistogramFamily, _ row: Int, skipEmpty: Bool) {
        let cumulative = h.cumulative(row)
        let count = cumulative.last ?? 0
        if skipEmpty && count == 0 { return }
        let base = label.map { [$0] } ?? []
        for (i, le) in LatencyBuckets.labels.enumerated() {
            sample(name + "_bucket", base + [("le", le)], cumulative[i])
        }
        sampleText(name + "_sum", base, format(Double(h.sumNanos[row]) / 1e9))
        sample(name + "_count", base, count)
    }

    private func format(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }

    /// Label values escape backslash, quote and newline; HELP text only backslash and newline.
    static func escapeLabel(_ v: String) -> String { escape(v, quotes: true) }
    static func escapeHelp(_ v: String) -> String { escape(v, quotes: false) }

    private static func escape(_ v: String, quotes: Bool) -> String {
        var s = ""
        for c in v {
            switch c {
            case "\\": s += "\\\\"
            case "\"" where quotes: s += "\\\""
            case "\n": s += "\\n"
            default: s.append(c)
            }
        }
        return s
    }
}
