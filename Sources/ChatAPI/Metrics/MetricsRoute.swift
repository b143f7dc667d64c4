import HTTP
import Reactor

/// GET /metrics: the whole process's metrics, guarded by CHAT_METRICS_TOKEN when it is set
/// (never by a client API key: scrapers are not API clients).
extension Worker {
    func installMetricsRoute() {
        let token = shared.config.metricsToken.map { APIKeys(keys: [$0]) }
        router.add(.get, "/metrics") { [unowned self] req, _, r in
            if let token, token.owner(forAuthorization: req.head.headers["Authorization"]) == nil {
                var h = HTTPHeaders()
                h.add("WWW-Authenticate", "Bearer")
                let msg = req.head.headers["Authorization"] == nil ? "missing Authorization: Bearer <metrics token>" : "invalid metrics token"
                r.respondError(status: 401, type: "unauthorized", message: msg, headers: h)
                return
            }
            let others = shared.workers.all.enumerated().filter { $0.offset != index }.map(\.element)
            metricsCollection.collect(local: metricsSnapshot(), others: others) { [unowned self] merged in
                if merged.workersReporting < shared.config.workers {
                    logger.warn("metrics scrape answered without every worker",
                                [("reporting", .int(merged.workersReporting)), ("workers", .int(shared.config.workers))])
                }
                var h = HTTPHeaders()
                h.add("Content-Type", PrometheusText.contentType)
                h.add("Cache-Control", "no-store")
                r.respond(status: 200, headers: h, body: PrometheusText.render(merged, processFacts()))
            }
        }
    }

    /// Hooks that count every response and stamp Server-Timing on every head.
    func installMetricsHooks() {
        pool.onWaitForConnection = { [unowned self] nanos in self.metrics.waitedForConnection(nanos: nanos) }
        server.onResponseHead = { r, out in
            ServerTiming.append(start: r.startedAt, headAt: r.headWrittenAt, timing: (r.context as? RequestContext)?.timing, to: &out)
        }
    }

    /// This worker's numbers now (also called on this loop when another worker asks for them).
    func metricsSnapshot() -> MetricsSnapshot {
        let pool = self.pool.stats
        return metrics.snapshot(MetricsGauges(
            openConnections: server.connectionCount, openStreams: service.activeTurns,
            poolInUse: pool.busy, poolIdle: pool.idle, poolQueueLength: pool.queued, draining: server.isDraining,
            logLinesDropped: logger.droppedLines, journalAnswers: service.journal?.answers ?? 0,
            journalAppends: service.journal?.appended ?? 0, journalFailures: service.journal?.failures ?? 0))
    }

    /// Every deployment of the catalog in force, once each (the built-in catalog shares one per provider).
    private func breakerReadings() -> [BreakerReading] {
        var seen = Set<String>()
        var out: [BreakerReading] = []
        for m in service.catalog.models {
            for d in m.deployments where seen.insert(d.id).inserted {
                out.append(BreakerReading(deployment: d.id, state: d.health.state.rawValue, inFlight: d.health.inFlight))
            }
        }
        return out
    }

    private func processFacts() -> ProcessFacts {
        ProcessFacts(version: shared.version, workers: shared.config.workers, residentBytes: ProcessStats.residentBytes,
                     openFileDescriptors: ProcessStats.openFileCount, startTimeSeconds: shared.startedAtWallSeconds,
                     catalog: catalogStatus, breakers: breakerReadings())
    }
}
