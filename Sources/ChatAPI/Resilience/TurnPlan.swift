import Providers

/// The models a turn may be answered by, in order (the requested one, then its fallbacks), and
/// which of their deployments it has used; hands out the route of the next attempt.
struct TurnPlan {
    struct Entry {
        let name: String
        let model: CatalogModel
    }

    private(set) var entries: [Entry]
    private(set) var index = 0
    /// Attempts per (entry, deployment id): the built-in catalog serves several names from one
    /// deployment, and a fallback to another name there is a new start. A handful at most, so a
    /// list beats a dictionary keyed by joined strings.
    private var attemptsOn: [(entry: Int, deployment: String, count: Int)] = []
    let policy: RetryPolicy

    /// `fallbacks`: the request's own list, else the catalog model's. Unknown fallback names are
    /// skipped here (the catalog checks its own at load; a request's are checked by the route).
    init(primary: RoutedModel, catalog: ModelCatalog, requestFallbacks: [String]?) {
        var entries: [Entry] = []
        if let m = primary.entry ?? catalog.lookup(primary.name) { entries.append(Entry(name: primary.name, model: m)) }
        for name in requestFallbacks ?? primary.resilience.fallbacks where name != primary.name {
            if let m = catalog.lookup(name), !entries.contains(where: { $0.name == name }) { entries.append(Entry(name: name, model: m)) }
        }
        self.entries = entries
        policy = primary.resilience.retry
    }

    var current: Entry? { index < entries.count ? entries[index] : nil }

    private func count(entry: Int, _ deployment: String) -> Int {
        for a in attemptsOn where a.entry == entry && a.deployment == deployment { return a.count }
        return 0
    }

    mutating func noteAttempt(_ route: RoutedModel) {
        let e = entries.firstIndex { $0.name == route.name } ?? index
        if let i = attemptsOn.firstIndex(where: { $0.entry == e && $0.deployment == route.deployment.id }) {
            attemptsOn[i].count += 1
        } else {
            attemptsOn.append((e, route.deployment.id, 1))
        }
    }

    /// The next route: a deployment of the current model not yet tried (no wait), else one with
    /// retries left (after a backoff: `isRetry`), else the next fallback model. `excluding` leaves
    /// out deployments already running for this turn (hedging); `hasRoom` those at their own
    /// request or token limit.
    mutating func next(nowMs: Int64, excluding running: Set<String>, hasRoom: (Deployment) -> Bool = { _ in true },
                       random: () -> UInt64) -> (route: RoutedModel, isRetry: Bool, isFallback: Bool)? {
        while let entry = current {
            let ds = entry.model.deployments
            let plan = self
            let current = index
            let tried = { (d: Deployment) in plan.count(entry: current, d.id) }
            if let d = DeploymentChooser.choose(ds, nowMs: nowMs, ordered: entry.model.resilience.ordered,
                                                excluded: { running.contains($0.id) || tried($0) > 0 || !hasRoom($0) }, random: random),
               let r = ModelCatalog.routed(entry.name, entry: entry.model, deployment: d) {
                let firstOfEntry = !ds.contains { tried($0) > 0 }
                return (r, false, index > 0 && firstOfEntry)
            }
            let retries = policy.retriesPerDeployment
            if let d = DeploymentChooser.choose(ds, nowMs: nowMs, ordered: entry.model.resilience.ordered,
                                                excluded: { running.contains($0.id) || tried($0) > retries || !hasRoom($0) }, random: random),
               let r = ModelCatalog.routed(entry.name, entry: entry.model, deployment: d) {
                return (r, true, false)
            }
            index += 1
        }
        return nil
    }
}
