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
    /// Attempts per model and deployment id ("model\ndeployment"): the built-in catalog serves
    /// several names from one deployment, and a fallback to another name there is a new start.
    private var attemptsOn: [String: Int] = [:]
    let policy: RetryPolicy

    /// `fallbacks`: the request's own list, else the catalog model's. Unknown fallback names are
    /// skipped here (the catalog checks its own at load; a request's are checked by the route).
    init(primary: RoutedModel, catalog: ModelCatalog, requestFallbacks: [String]?) {
        var entries: [Entry] = []
        if let m = catalog.lookup(primary.name) { entries.append(Entry(name: primary.name, model: m)) }
        for name in requestFallbacks ?? primary.resilience.fallbacks where name != primary.name {
            if let m = catalog.lookup(name), !entries.contains(where: { $0.name == name }) { entries.append(Entry(name: name, model: m)) }
        }
        self.entries = entries
        policy = primary.resilience.retry
    }

    var current: Entry? { index < entries.count ? entries[index] : nil }

    private static func key(_ model: String, _ deployment: String) -> String { model + "\n" + deployment }

    mutating func noteAttempt(_ route: RoutedModel) { attemptsOn[TurnPlan.key(route.name, route.deployment.id), default: 0] += 1 }

    /// The next route: a deployment of the current model not yet tried (no wait), else one with
    /// retries left (after a backoff: `isRetry`), else the next fallback model. `excluding` leaves
    /// out deployments already running for this turn (hedging).
    mutating func next(nowMs: Int64, excluding running: Set<String>, random: () -> UInt64) -> (route: RoutedModel, isRetry: Bool, isFallback: Bool)? {
        while let entry = current {
            let ds = entry.model.deployments
            let counts = attemptsOn
            let tried = { (d: Deployment) in counts[TurnPlan.key(entry.name, d.id), default: 0] }
            if let d = DeploymentChooser.choose(ds, nowMs: nowMs, ordered: entry.model.resilience.ordered,
                                                excluded: { running.contains($0.id) || tried($0) > 0 }, random: random),
               let r = ModelCatalog.routed(entry.name, entry: entry.model, deployment: d) {
                let firstOfEntry = !ds.contains { tried($0) > 0 }
                return (r, false, index > 0 && firstOfEntry)
            }
            let retries = policy.retriesPerDeployment
            if let d = DeploymentChooser.choose(ds, nowMs: nowMs, ordered: entry.model.resilience.ordered,
                                                excluded: { running.contains($0.id) || tried($0) > retries }, random: random),
               let r = ModelCatalog.routed(entry.name, entry: entry.model, deployment: d) {
                return (r, true, false)
            }
            index += 1
        }
        return nil
    }
}
