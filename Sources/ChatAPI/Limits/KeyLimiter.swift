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
/// claimed, then a stream slot. A later refusal gives back what an earlier check took. In the
/// steady state every check is answered from this worker's copy, at once and without closures;
/// only a check that needs the database goes the asynchronous way.
struct KeyLimiter {
    let windows: SharedWindows
    let slots: StreamSlots

    static let minuteMs: Int64 = 60_000

    static func budgetWindowMs(_ p: BudgetPeriod) -> Int64 { p == .day ? -1 : -2 }

    enum Outcome {
        case admitted(Admission)
        case refused(LimitRefusal)
        case unavailable
    }

    // MARK: Windows of a key

    func rpmWindow(_ k: DirectoryKey) -> LimitWindow? {
        window(k, \.rpm, k.rpmSubject, .claim, limit: k.record.limits.rpm.map(Int64.init), windowMs: Self.minuteMs)
    }

    func tpmWindow(_ k: DirectoryKey) -> LimitWindow? {
        window(k, \.tpm, k.tpmSubject, .tally, limit: k.record.limits.tpm.map(Int64.init), windowMs: Self.minuteMs)
    }

    func usdWindow(_ k: DirectoryKey) -> LimitWindow? {
        guard let period = k.record.limits.budgetPeriod else { return nil }
        return window(k, \.usd, k.usdSubject, .tally, limit: k.budgetPico, windowMs: Self.budgetWindowMs(period))
    }

    /// The key's window kept in `slot`, looked up by subject once (and again after a long idle
    /// dropped it); nil when the key has no such limit.
    private func window(_ k: DirectoryKey, _ slot: ReferenceWritableKeyPath<DirectoryKey, LimitWindow?>, _ subject: String,
                        _ mode: LimitWindow.Mode, limit: Int64?, windowMs: Int64) -> LimitWindow? {
        guard let limit else { return nil }
        if let w = k[keyPath: slot], !w.dropped { return w }
        let w = windows.window(subject, mode, limit: limit, windowMs: windowMs)
        k[keyPath: slot] = w
        return w
    }

    // MARK: Admission

    func admit(_ key: DirectoryKey, then: @escaping (Outcome) -> Void) {
        if key.record.limits.isUnlimited { return then(.admitted(Admission(streamSubject: nil))) }
        if let now = admitNow(key) { return then(now) }
        checkTokens(key, then)
    }

    /// The whole admission from this worker's copies; nil (nothing taken) when any check needs the
    /// database.
    private func admitNow(_ key: DirectoryKey) -> Outcome? {
        if let w = tpmWindow(key) {
            switch windows.checkNow(w) {
            case nil: return nil
            case .refused?: return .refused(tokensRefusal(key, w))
            default: break
            }
        }
        if let w = usdWindow(key) {
            switch windows.checkNow(w) {
            case nil: return nil
            case .refused?: return .refused(budgetRefusal(key, w))
            default: break
            }
        }
        var took: LimitWindow?
        if let w = rpmWindow(key) {
            switch windows.takeNow(w) {
            case nil: return nil
            case .refused?: return .refused(requestsRefusal(key, w))
            default: took = w
            }
        }
        guard let max = key.record.limits.maxStreams else { return .admitted(Admission(streamSubject: nil)) }
        switch slots.acquireNow(key.streamsSubject, limit: max) {
        case .granted?: return .admitted(Admission(streamSubject: key.streamsSubject))
        case .refused?:
            if let w = took { windows.giveBack(w) }
            return .refused(streamsRefusal(max))
        default:
            if let w = took { windows.giveBack(w) }
            return nil
        }
    }

    private func checkTokens(_ key: DirectoryKey, _ then: @escaping (Outcome) -> Void) {
        guard let w = tpmWindow(key) else { return checkBudget(key, then) }
        windows.check(w) { g in
            switch g {
            case .granted: self.checkBudget(key, then)
            case .unavailable: then(.unavailable)
            case .refused: then(.refused(self.tokensRefusal(key, w)))
            }
        }
    }

    private func checkBudget(_ key: DirectoryKey, _ then: @escaping (Outcome) -> Void) {
        guard let w = usdWindow(key) else { return claimRequest(key, then) }
        windows.check(w) { g in
            switch g {
            case .granted: self.claimRequest(key, then)
            case .unavailable: then(.unavailable)
            case .refused: then(.refused(self.budgetRefusal(key, w)))
            }
        }
    }

    private func claimRequest(_ key: DirectoryKey, _ then: @escaping (Outcome) -> Void) {
        guard let w = rpmWindow(key) else { return claimStream(key, tookRequest: nil, then) }
        windows.take(w) { g in
            switch g {
            case .granted: self.claimStream(key, tookRequest: w, then)
            case .unavailable: then(.unavailable)
            case .refused: then(.refused(self.requestsRefusal(key, w)))
            }
        }
    }

    private func claimStream(_ key: DirectoryKey, tookRequest: LimitWindow?, _ then: @escaping (Outcome) -> Void) {
        guard let max = key.record.limits.maxStreams else { return then(.admitted(Admission(streamSubject: nil))) }
        slots.acquire(key.streamsSubject, limit: max) { g in
            switch g {
            case .granted: then(.admitted(Admission(streamSubject: key.streamsSubject)))
            case .unavailable:
                if let w = tookRequest { self.windows.giveBack(w) }
                then(.unavailable)
            case .refused:
                if let w = tookRequest { self.windows.giveBack(w) }
                then(.refused(self.streamsRefusal(max)))
            }
        }
    }

    // MARK: Refusals

    private func tokensRefusal(_ key: DirectoryKey, _ w: LimitWindow) -> LimitRefusal {
        let tpm = key.record.limits.tpm ?? 0
        let reset = windows.reading(w)?.resetMs ?? Self.minuteMs
        return LimitRefusal(kind: .tokens, limit: Int64(tpm), resetMs: reset,
                            message: "this key has used its \(tpm) tokens per minute; try again in \(Self.seconds(reset)) s")
    }

    private func budgetRefusal(_ key: DirectoryKey, _ w: LimitWindow) -> LimitRefusal {
        let reset = windows.reading(w)?.resetMs ?? 0
        let budget = key.budgetPico.map(USD.format) ?? "?"
        let period = key.record.limits.budgetPeriod?.rawValue ?? "period"
        return LimitRefusal(kind: .budget, limit: key.budgetPico ?? 0, resetMs: reset,
                            message: "this key has spent its budget of $\(budget) for the \(period)")
    }

    private func requestsRefusal(_ key: DirectoryKey, _ w: LimitWindow) -> LimitRefusal {
        let rpm = key.record.limits.rpm ?? 0
        let reset = windows.reading(w)?.resetMs ?? Self.minuteMs
        return LimitRefusal(kind: .requests, limit: Int64(rpm), resetMs: reset,
                            message: "this key has made its \(rpm) requests per minute; try again in \(Self.seconds(reset)) s")
    }

    private func streamsRefusal(_ max: Int) -> LimitRefusal {
        LimitRefusal(kind: .streams, limit: Int64(max), resetMs: 1_000, message: "this key already has its \(max) concurrent streams open")
    }

    // MARK: The end of a turn

    /// The end of an admitted turn: its slot back, and what it used charged to the key.
    func finished(_ admission: Admission, key: DirectoryKey?, tokens: Int64, costPico: Int64) {
        if let s = admission.streamSubject { slots.release(s) }
        guard let key else { return }
        if let w = tpmWindow(key) { windows.charge(w, amount: tokens) }
        if let w = usdWindow(key) { windows.charge(w, amount: costPico) }
    }

    static func seconds(_ ms: Int64) -> Int64 { max(1, (ms + 999) / 1000) }
}
