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

    static func subject(_ d: Deployment, _ what: String) -> String { "d:\(d.id):\(what)" }

    func hasRoom(_ d: Deployment) -> Bool {
        if let rpm = d.rpm, !windows.hasRoom(Self.subject(d, "rpm"), limit: Int64(rpm), windowMs: KeyLimiter.minuteMs, mode: .claim) {
            return false
        }
        if let tpm = d.tpm, !windows.hasRoom(Self.subject(d, "tpm"), limit: Int64(tpm), windowMs: KeyLimiter.minuteMs, mode: .tally) {
            return false
        }
        return true
    }

    /// An attempt starts on `d`: one of its requests is used.
    /// Runs `then` once every rpm-limited deployment of `models` has a unit here or is known full,
    /// and every tpm-limited one's tally is fresh: at once in the steady state (units are claimed
    /// ahead, tallies re-read by every sync), one round trip otherwise.
    func prepare(_ models: [CatalogModel], then: @escaping () -> Void) {
        var pending = 1
        let one = { pending -= 1; if pending == 0 { then() } }
        for m in models {
            for d in m.deployments {
                if let rpm = d.rpm {
                    pending += 1
                    windows.ensureUnits(Self.subject(d, "rpm"), limit: Int64(rpm), windowMs: KeyLimiter.minuteMs, then: one)
                }
                if let tpm = d.tpm {
                    pending += 1
                    windows.check(Self.subject(d, "tpm"), limit: Int64(tpm), windowMs: KeyLimiter.minuteMs) { _ in one() }
                }
            }
        }
        one()
    }

    func started(_ d: Deployment) {
        guard let rpm = d.rpm else { return }
        windows.take(Self.subject(d, "rpm"), limit: Int64(rpm), windowMs: KeyLimiter.minuteMs, credit: true) { _ in }
    }

    func charge(_ d: Deployment, tokens: Int64) {
        guard let tpm = d.tpm else { return }
        windows.charge(Self.subject(d, "tpm"), limit: Int64(tpm), windowMs: KeyLimiter.minuteMs, amount: tokens)
    }
}
