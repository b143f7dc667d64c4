import Reactor
import Storage

/// How a limit answered: room, no room, or the database that keeps the count is away.
enum Grant {
    case granted
    case refused
    case unavailable
}

/// One worker's view of one shared window. Owned by `SharedWindows` (only it changes the state);
/// callers keep the object to skip the lookup by subject on every request.
final class LimitWindow {
    enum Mode {
        case claim
        case tally
    }

    let subject: String
    let mode: Mode
    fileprivate(set) var limit: Int64
    fileprivate(set) var windowMs: Int64
    /// Answered by the database at least once in the current window.
    fileprivate var known = false
    /// claim: units claimed and not handed out (negative: handed out on credit).
    fileprivate var units: Int64 = 0
    fileprivate var windowID: Int64 = 0
    fileprivate var resetAtMs: Int64 = 0
    fileprivate var usedDB: Int64 = 0
    /// When the database last answered for this window.
    fileprivate var readAtMs: Int64 = 0
    /// tally: charged here, not yet sent; and sent, not yet answered.
    fileprivate var pending: Int64 = 0
    fileprivate var sending: Int64 = 0
    /// The last claim got less than it asked: no more until the window resets.
    fileprivate var exhausted = false
    fileprivate var inFlight = false
    fileprivate var waiters: [(Grant) -> Void] = []
    /// Waiting for the claim in flight to be answered, without taking a unit.
    fileprivate var watchers: [() -> Void] = []
    fileprivate var lastUseMs: Int64 = 0
    /// Forgotten after a long idle: a holder must look the subject up again.
    fileprivate(set) var dropped = false

    fileprivate init(subject: String, mode: Mode, limit: Int64, windowMs: Int64) {
        self.subject = subject
        self.mode = mode
        self.limit = limit
        self.windowMs = windowMs
    }
}

/// One worker's share of the limit windows kept in PostgreSQL (docs/limits.md).
///
/// Requests are *claimed* before they are admitted: the worker claims a small batch of a window
/// from the database in one statement and hands the units out locally, claiming the next batch
/// before the last unit is gone, so a turn waits for the database only when its key's first
/// request of a window arrives. The database never grants more than the limit in all, so with
/// any number of instances the requests admitted stay within it. Units a worker holds and does
/// not use are given back after a second idle.
///
/// Tokens and cost are known only when an answer ends: they are *charged* after the fact, in
/// batches, and a request is admitted while the window's total (the database's, as of the last
/// sync, plus what this worker has charged since) is under the limit.
final class SharedWindows {
    /// What a window shows the client (RateLimit headers).
    struct Reading {
        let limit: Int64
        let remaining: Int64
        let resetMs: Int64
    }

    private let loop: EventLoop
    private let store: LimitStore
    private var windows: [String: LimitWindow] = [:]
    private var syncTimer: TimerID?
    private var syncInFlight = false
    private var stopped = false
    let syncMillis: Int64
    /// Statements sent, for tests and metrics.
    private(set) var statements = 0

    init(loop: EventLoop, store: LimitStore, syncMillis: Int64 = 250) {
        self.loop = loop
        self.store = store
        self.syncMillis = syncMillis
    }

    static func nowMs() -> Int64 { Int64(monotonicNanos() / 1_000_000) }

    /// How many units one claim asks for ahead of need: small against the limit, so units
    /// stranded on an idle worker are few, and large enough at high rates that claims stay rare.
    /// Under 128 a minute nothing is claimed ahead: each request claims its own unit, so no worker
    /// holds one another needs (a round trip per request, at most two a second).
    static func batch(_ limit: Int64) -> Int64 { limit < 128 ? 0 : min(256, limit / 64) }

    /// The window of `subject`, created on first use. A limit changed by an admin edit applies
    /// from the next call.
    func window(_ subject: String, _ mode: LimitWindow.Mode, limit: Int64, windowMs: Int64) -> LimitWindow {
        if let w = windows[subject] {
            w.limit = limit
            w.windowMs = windowMs
            return w
        }
        let w = LimitWindow(subject: subject, mode: mode, limit: limit, windowMs: windowMs)
        windows[subject] = w
        return w
    }

    /// Rolls the window over locally once its end has passed: a claim's units are void, a tally
    /// starts from zero (the next sync reads what others added).
    private func touch(_ w: LimitWindow, now: Int64) {
        w.lastUseMs = now
        guard w.known && now >= w.resetAtMs else { return }
        w.exhausted = false
        w.units = min(w.units, 0)
        if w.mode == .tally { w.usedDB = 0 } else { w.known = false }
    }

    // MARK: Claims (requests)

    /// Takes one unit when that needs no database: nil when a claim must be awaited.
    func takeNow(_ w: LimitWindow) -> Grant? {
        touch(w, now: Self.nowMs())
        if w.units > 0 {
            w.units -= 1
            let ahead = Self.batch(w.limit)
            if ahead > 0 && w.units <= ahead / 2 && !w.inFlight && !w.exhausted { claim(w) }
            return .granted
        }
        return w.exhausted ? .refused : nil
    }

    /// Takes one unit. With `credit`, a worker without units takes one on credit (repaid by its
    /// next claim) rather than wait; for deployments, whose limit only needs to hold within a
    /// claim's round trip.
    func take(_ w: LimitWindow, credit: Bool = false, then: @escaping (Grant) -> Void) {
        if let g = takeNow(w) { return then(g) }
        if credit {
            w.units -= 1
            if !w.inFlight { claim(w) }
            return then(.granted)
        }
        w.waiters.append(then)
        if !w.inFlight { claim(w) }
    }

    /// Runs `then` once this worker holds a unit or knows there is none left, claiming if needed:
    /// so a choice made later on the loop, at once, is made on what the database says.
    func ensureUnits(_ w: LimitWindow, then: @escaping () -> Void) {
        touch(w, now: Self.nowMs())
        if w.units > 0 || w.exhausted { return then() }
        w.watchers.append(then)
        if !w.inFlight { claim(w) }
    }

    /// Gives back a unit taken for a request that was then refused for another reason.
    func giveBack(_ w: LimitWindow) {
        guard w.mode == .claim, !w.known || Self.nowMs() < w.resetAtMs else { return }
        w.units += 1
    }

    /// False when the window is known to have no room left.
    func hasRoom(_ w: LimitWindow) -> Bool {
        touch(w, now: Self.nowMs())
        switch w.mode {
        case .claim: return !(w.exhausted && w.units <= 0)
        case .tally:
            if !w.known && !w.inFlight { read(w) }
            return !w.known || w.usedDB + w.pending + w.sending < w.limit
        }
    }

    private func claim(_ w: LimitWindow) {
        guard !stopped else { return }
        let asked = max(1, Self.batch(w.limit) + Int64(w.waiters.count) + max(0, -w.units))
        w.inFlight = true
        statements += 1
        store.windows([WindowOp(subject: w.subject, kind: .claim, amount: asked, limit: w.limit, windowMs: w.windowMs)]) { [weak self] r in
            self?.claimed(w, asked: asked, r)
        }
    }

    private func claimed(_ w: LimitWindow, asked: Int64, _ r: Result<[WindowState], StoreError>) {
        w.inFlight = false
        let waiters = w.waiters
        let watchers = w.watchers
        w.waiters = []
        w.watchers = []
        defer { for f in watchers { f() } }
        guard case .success(let states) = r, let s = states.first else {
            for f in waiters { f(.unavailable) }
            return
        }
        if s.windowID != w.windowID {
            // A new window: what was held for the old one is void (credit taken is still repaid).
            w.units = min(w.units, 0)
        }
        apply(s, to: w)
        w.units += s.granted
        w.exhausted = s.granted < asked
        var answers: [(Grant) -> Void] = []
        var refusals: [(Grant) -> Void] = []
        for f in waiters {
            if w.units > 0 {
                w.units -= 1
                answers.append(f)
            } else if w.exhausted {
                refusals.append(f)
            } else {
                // Arrived while the claim was in flight: it claims for itself next.
                w.waiters.append(f)
            }
        }
        if !w.waiters.isEmpty { claim(w) }
        // Units held are given back by the sync after a second idle.
        if w.units > 0 { scheduleSync() }
        for f in answers { f(.granted) }
        for f in refusals { f(.refused) }
    }

    // MARK: Tallies (tokens, cost)

    /// Room or not, when this worker's copy is fresh (read within two syncs; a worker under load
    /// re-reads its tallies every sync): nil when the database must be read first.
    func checkNow(_ w: LimitWindow) -> Grant? {
        let now = Self.nowMs()
        touch(w, now: now)
        guard w.known && now - w.readAtMs <= 2 * syncMillis else { return nil }
        scheduleSync()
        return w.usedDB + w.pending + w.sending < w.limit ? .granted : .refused
    }

    func check(_ w: LimitWindow, then: @escaping (Grant) -> Void) {
        if let g = checkNow(w) { return then(g) }
        w.waiters.append(then)
        if !w.inFlight { read(w) }
    }

    /// Adds what an answer used; sent with the next sync, or at once when it uses the window up
    /// (every instance should refuse the next request now).
    func charge(_ w: LimitWindow, amount: Int64) {
        guard amount > 0 else { return }
        touch(w, now: Self.nowMs())
        w.pending += amount
        if w.usedDB + w.pending + w.sending >= w.limit && !syncInFlight {
            if let t = syncTimer { loop.cancel(t); syncTimer = nil }
            sync()
        } else {
            scheduleSync()
        }
    }

    private func read(_ w: LimitWindow) {
        guard !stopped else { return }
        w.inFlight = true
        statements += 1
        store.windows([WindowOp(subject: w.subject, kind: .read, amount: 0, limit: w.limit, windowMs: w.windowMs)]) { [weak self] r in
            guard let self else { return }
            w.inFlight = false
            let waiters = w.waiters
            w.waiters = []
            guard case .success(let states) = r, let s = states.first else {
                for f in waiters { f(.unavailable) }
                return
            }
            self.apply(s, to: w)
            let grant: Grant = w.usedDB + w.pending + w.sending < w.limit ? .granted : .refused
            for f in waiters { f(grant) }
        }
    }

    // MARK: Readings

    func reading(_ w: LimitWindow) -> Reading? {
        guard w.known else { return nil }
        let now = Self.nowMs()
        guard now < w.resetAtMs else { return Reading(limit: w.limit, remaining: w.limit, resetMs: 0) }
        let used = w.mode == .claim ? w.usedDB - max(w.units, 0) : w.usedDB + w.pending + w.sending
        return Reading(limit: w.limit, remaining: max(0, w.limit - used), resetMs: w.resetAtMs - now)
    }

    // MARK: Sync

    /// Every `syncMillis` while there is something to say, one statement: this worker's charges,
    /// fresh totals of the tallies in use (what other instances charged), and claimed units idle
    /// for a second given back.
    private func scheduleSync() {
        guard syncTimer == nil, !stopped else { return }
        syncTimer = loop.schedule(afterMillis: syncMillis) { [weak self] in
            self?.syncTimer = nil
            self?.sync()
        }
    }

    private func sync() {
        guard !syncInFlight, !stopped else { return scheduleSync() }
        let now = Self.nowMs()
        var ops: [WindowOp] = []
        var sent: [LimitWindow] = []
        var more = false
        for (subject, w) in windows {
            let idleMs = now - w.lastUseMs
            switch w.mode {
            case .tally:
                if w.pending > 0 {
                    ops.append(WindowOp(subject: subject, kind: .charge, amount: w.pending, limit: w.limit, windowMs: w.windowMs))
                    w.sending = w.pending
                    w.pending = 0
                    sent.append(w)
                } else if w.known && !w.inFlight && idleMs < 5_000 {
                    ops.append(WindowOp(subject: subject, kind: .read, amount: 0, limit: w.limit, windowMs: w.windowMs))
                    sent.append(w)
                }
                if idleMs < 5_000 { more = true }
            case .claim:
                if w.units > 0 && !w.inFlight && idleMs >= 1_000 && now < w.resetAtMs {
                    ops.append(WindowOp(subject: subject, kind: .release, amount: w.units, limit: w.limit, windowMs: w.windowMs,
                                        windowID: w.windowID))
                    w.units = 0
                } else if w.units > 0 {
                    more = true
                }
            }
            if idleMs > 120_000 && w.pending == 0 && w.sending == 0 && w.units == 0 && !w.inFlight && w.waiters.isEmpty
                && w.watchers.isEmpty {
                w.dropped = true
                windows[subject] = nil
            }
        }
        guard !ops.isEmpty else {
            if more { scheduleSync() }
            return
        }
        syncInFlight = true
        statements += 1
        store.windows(ops) { [weak self] r in
            guard let self else { return }
            self.syncInFlight = false
            switch r {
            case .success(let states):
                var bySubject: [String: WindowState] = [:]
                for s in states { bySubject[s.subject] = s }
                for w in sent {
                    w.sending = 0
                    if let s = bySubject[w.subject], !w.inFlight { self.apply(s, to: w) }
                }
            case .failure:
                // The charges go again with the next sync; released units are simply not given back.
                for w in sent {
                    w.pending += w.sending
                    w.sending = 0
                }
            }
            self.scheduleSync()
        }
    }

    /// Sends what is pending now (drain), calling `done` when answered.
    func flush(_ done: @escaping () -> Void) {
        if let t = syncTimer { loop.cancel(t); syncTimer = nil }
        let pending = windows.values.contains { $0.pending > 0 }
        guard pending, !syncInFlight else { return done() }
        sync()
        waitUntilIdle(done, attempts: 40)
    }

    private func waitUntilIdle(_ done: @escaping () -> Void, attempts: Int) {
        guard syncInFlight, attempts > 0 else { return done() }
        loop.schedule(afterMillis: 25) { [weak self] in self?.waitUntilIdle(done, attempts: attempts - 1) ?? done() }
    }

    func stop() {
        stopped = true
        if let t = syncTimer { loop.cancel(t); syncTimer = nil }
        for w in windows.values where !w.waiters.isEmpty || !w.watchers.isEmpty {
            let (waiters, watchers) = (w.waiters, w.watchers)
            w.waiters = []
            w.watchers = []
            for f in waiters { f(.unavailable) }
            for f in watchers { f() }
        }
    }

    private func apply(_ s: WindowState, to w: LimitWindow) {
        w.known = true
        w.readAtMs = Self.nowMs()
        w.usedDB = s.used
        w.windowID = s.windowID
        w.resetAtMs = Self.nowMs() + s.resetMs
        if w.mode == .tally { w.exhausted = false }
    }
}
