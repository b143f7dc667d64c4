import Providers

/// A deployment's own requests and tokens per minute (`rpm`, `tpm` in models.yaml), held across
/// instances through the shared windows. The router asks `hasRoom` while choosing, so a
/// deployment at its limit is passed over for another (or a fallback model) as if its breaker
/// were open. Requests are taken on credit, never waited for: the choice is made on the loop at
/// once. Before a turn is admitted, `prepare` makes sure this worker holds a unit of (or knows
/// the state of) each rpm-limited deployment the turn may use, so that choice is exact; a unit is
/// taken on credit only by a retry or hedge that finds none.
struct DeploymentLimiter {
    let windows: SharedWindows

    private func rpm(_ d: Deployment) -> LimitWindow? {
        d.rpm.map { windows.window("d:\(d.id):rpm", .claim, limit: Int64($0), windowMs: KeyLimiter.minuteMs) }
    }

    private func tpm(_ d: Deployment) -> LimitWindow? {
        d.tpm.map { windows.window("d:\(d.id):tpm", .tally, limit: Int64($0), windowMs: KeyLimiter.minuteMs) }
    }

    func hasRoom(_ d: Deployment) -> Bool {
        if let w = rpm(d), !windows.hasRoom(w) { return false }
        if let w = tpm(d), !windows.hasRoom(w) { return false }
        return true
    }

    /// Runs `then` once every rpm-limited deployment of `models` has a unit here or is known full,
    /// and every tpm-limited one's tally is fresh: at once in the steady state (units are claimed
    /// ahead, tallies re-read by every sync), one round trip otherwise.
    func prepare(_ models: [CatalogModel], then: @escaping () -> Void) {
        var pending = 1
        let one = { pending -= 1; if pending == 0 { then() } }
        for m in models {
            for d in m.deployments {
                if let w = rpm(d) {
                    pending += 1
                    windows.ensureUnits(w, then: one)
                }
                if let w = tpm(d) {
                    pending += 1
                    windows.check(w) { _ in one() }
                }
            }
        }
        one()
    }

    /// An attempt starts on `d`: one of its requests is used.
    func started(_ d: Deployment) {
        guard let w = rpm(d) else { return }
        windows.take(w, credit: true) { _ in }
    }

    func charge(_ d: Deployment, tokens: Int64) {
        guard let w = tpm(d) else { return }
        windows.charge(w, amount: tokens)
    }
}
