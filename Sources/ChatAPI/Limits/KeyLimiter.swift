import Providers
import Storage

/// Which limit refused a request, and when it has room again.
struct LimitRefusal {
    enum Kind: String {
        case requests, tokens, budget, streams
    }

    let kind: Kind
    let limit: Int64
    let resetMs: Int64
    let message: String
}

/// A key's admission of one turn: what it holds (a stream slot) until the turn ends.
struct Admission {
    let streamSubject: String?
}

/// A key's limits, enforced through the shared windows and stream slots: tokens per minute and
/// the budget are checked (they are charged after the answer), then a request of the minute is
/// claimed, then a stream slot. A later refusal gives back what an earlier check took.
struct KeyLimiter {
    let windows: SharedWindows
    let slots: StreamSlots

    static let minuteMs: Int64 = 60_000

    static func subject(_ key: KeyRecord, _ what: String) -> String { "k:\(key.id):\(what)" }

    static func budgetWindowMs(_ p: BudgetPeriod) -> Int64 { p == .day ? -1 : -2 }

    enum Outcome {
        case admitted(Admission)
        case refused(LimitRefusal)
        case unavailable
    }

    func admit(_ key: KeyRecord, then: @escaping (Outcome) -> Void) {
        let l = key.limits
        guard !l.isUnlimited else { return then(.admitted(Admission(streamSubject: nil))) }
        checkTokens(key, l) { then($0) }
    }

    private func checkTokens(_ key: KeyRecord, _ l: KeyLimits, _ then: @escaping (Outcome) -> Void) {
        guard let tpm = l.tpm else { return checkBudget(key, l, then) }
        let subject = Self.subject(key, "tpm")
        windows.check(subject, limit: Int64(tpm), windowMs: Self.minuteMs) { g in
            switch g {
            case .granted: self.checkBudget(key, l, then)
            case .unavailable: then(.unavailable)
            case .refused:
                let reset = self.windows.reading(subject)?.resetMs ?? Self.minuteMs
                then(.refused(LimitRefusal(kind: .tokens, limit: Int64(tpm), resetMs: reset,
                                           message: "this key has used its \(tpm) tokens per minute; try again in \(Self.seconds(reset)) s")))
            }
        }
    }

    private func checkBudget(_ key: KeyRecord, _ l: KeyLimits, _ then: @escaping (Outcome) -> Void) {
        guard let budget = l.budgetUSD, let period = l.budgetPeriod, let pico = USD.pico(budget) else { return claimRequest(key, l, then) }
        let subject = Self.subject(key, "usd")
        windows.check(subject, limit: pico, windowMs: Self.budgetWindowMs(period)) { g in
            switch g {
            case .granted: self.claimRequest(key, l, then)
            case .unavailable: then(.unavailable)
            case .refused:
                let reset = self.windows.reading(subject)?.resetMs ?? 0
                then(.refused(LimitRefusal(kind: .budget, limit: pico, resetMs: reset,
                                           message: "this key has spent its budget of $\(budget) for the \(period.rawValue)")))
            }
        }
    }

    private func claimRequest(_ key: KeyRecord, _ l: KeyLimits, _ then: @escaping (Outcome) -> Void) {
        guard let rpm = l.rpm else { return claimStream(key, l, tookRequest: nil, then) }
        let subject = Self.subject(key, "rpm")
        windows.take(subject, limit: Int64(rpm), windowMs: Self.minuteMs) { g in
            switch g {
            case .granted: self.claimStream(key, l, tookRequest: subject, then)
            case .unavailable: then(.unavailable)
            case .refused:
                let reset = self.windows.reading(subject)?.resetMs ?? Self.minuteMs
                then(.refused(LimitRefusal(kind: .requests, limit: Int64(rpm), resetMs: reset,
                                           message: "this key has made its \(rpm) requests per minute; try again in \(Self.seconds(reset)) s")))
            }
        }
    }

    private func claimStream(_ key: KeyRecord, _ l: KeyLimits, tookRequest: String?, _ then: @escaping (Outcome) -> Void) {
        guard let max = l.maxStreams else { return then(.admitted(Admission(streamSubject: nil))) }
        let subject = Self.subject(key, "streams")
        slots.acquire(subject, limit: max) { g in
            switch g {
            case .granted: then(.admitted(Admission(streamSubject: subject)))
            case .unavailable:
                if let r = tookRequest { self.windows.giveBack(r) }
                then(.unavailable)
            case .refused:
                if let r = tookRequest { self.windows.giveBack(r) }
                then(.refused(LimitRefusal(kind: .streams, limit: Int64(max), resetMs: 1_000,
                                           message: "this key already has its \(max) concurrent streams open")))
            }
        }
    }

    /// The end of an admitted turn: its slot back, and what it used charged to the key.
    func finished(_ admission: Admission, key: KeyRecord?, tokens: Int64, costPico: Int64) {
        if let s = admission.streamSubject { slots.release(s) }
        guard let key else { return }
        if let tpm = key.limits.tpm {
            windows.charge(Self.subject(key, "tpm"), limit: Int64(tpm), windowMs: Self.minuteMs, amount: tokens)
        }
        if let budget = key.limits.budgetUSD, let period = key.limits.budgetPeriod, let pico = USD.pico(budget) {
            windows.charge(Self.subject(key, "usd"), limit: pico, windowMs: Self.budgetWindowMs(period), amount: costPico)
        }
    }

    static func seconds(_ ms: Int64) -> Int64 { max(1, (ms + 999) / 1000) }
}
