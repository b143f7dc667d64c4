/// Picks the deployment for the next attempt among a model's deployments: weighted, and of two
/// weighted draws the one with fewer streams in flight (power of two choices), skipping any that
/// lacks its key, is at `max_concurrent`, has an open breaker, or that the turn has used up.
/// `ordered`: the first usable one in catalog order instead (a primary and its stand-ins).
public enum DeploymentChooser {
    public static func choose(_ deployments: [Deployment], nowMs: Int64, ordered: Bool = false, excluded: (Deployment) -> Bool,
                              random: () -> UInt64) -> Deployment? {
        if deployments.count == 1 {
            // The common case: nothing to choose, so nothing to allocate.
            let d = deployments[0]
            guard d.hasKey, d.weight > 0, !excluded(d), d.health.isAdmissible(nowMs: nowMs) else { return nil }
            if let limit = d.maxConcurrent, d.health.inFlight >= limit { return nil }
            return d
        }
        var eligible: [Deployment] = []
        var total = 0
        for d in deployments where d.hasKey && d.weight > 0 && !excluded(d) && d.health.isAdmissible(nowMs: nowMs) {
            if let limit = d.maxConcurrent, d.health.inFlight >= limit { continue }
            if ordered { return d }
            eligible.append(d)
            total += d.weight
        }
        guard eligible.count > 1 else { return eligible.first }
        let first = draw(eligible, total: total, random())
        let second = draw(eligible, total: total, random())
        if first == second { return eligible[first] }
        return eligible[second].health.inFlight < eligible[first].health.inFlight ? eligible[second] : eligible[first]
    }

    static func draw(_ eligible: [Deployment], total: Int, _ r: UInt64) -> Int {
        var x = Int(r % UInt64(total))
        for (i, d) in eligible.enumerated() {
            if x < d.weight { return i }
            x -= d.weight
        }
        return eligible.count - 1
    }
}
