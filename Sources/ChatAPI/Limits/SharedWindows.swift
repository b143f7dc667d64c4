import Reactor
import Storage

/// How a limit answered: room, no room, or the database that keeps the count is away.
enum Grant {
    case granted
    case refused
    case unavailable
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
    enum Mode {
        case claim
        case tally
    }

    /// What a window shows the client (RateLimit headers).
    struct Reading {
        let limit: Int64
        let remaining: Int64
        let resetMs: Int64
    }

    private struct Window {
        let mode: Mode
        var limit: Int64
        var windowMs: Int64
        /// Answered by the database at least once in the current window.
        var known = false
        /// claim: units claimed and not handed out (negative: handed out on credit).
        var units: Int64 = 0
        var windowID: Int64 = 0
        var resetAtMs: Int64 = 0
        var usedDB: Int64 = 0
        /// When the database last answered for this window.
        var readAtMs: Int64 = 0
        /// tally: charged here, not yet sent; and sent, not yet answered.
        var pending: Int64 = 0
        var sending: Int64 = 0
        /// The last claim got less than it asked: no more until the window resets.
        var exhausted = false
        var inFlight = false
        var waiters: [(Grant) -> Void] = []
        /// Waiting for the claim in flight to be answered, without taking a unit.
        var watchers: [() -> Void] = []
        var lastUseMs: Int64 = 0
    }

    private let loop: EventLoop
    private let store: LimitStore
    private var windows: [String: Window] = [:]
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

    // MARK: Claims (requests)

    /// Takes one unit of `subject`. With `credit`, a worker without units takes one on credit
    /// (repaid by its next claim) rather than wait; for deployments, whose limit only needs to
    /// hold within a claim's round trip.
    func take(_ subject: String, limit: Int64, windowMs: Int64, credit: Bool = false, then: @escaping (Grant) -> Void) {
        let now = Self.nowMs()
        var w = window(subject, .claim, limit: limit, windowMs: windowMs, now: now)
        w.lastUseMs = now
        if w.units > 0 {
            w.units -= 1
            windows[subject] = w
            let ahead = Self.batch(limit)
            if ahead > 0 && w.units <= ahead / 2 && !w.inFlight && !w.exhausted { claim(subject) }
            return then(.granted)
        }
        if w.exhausted {
            windows[subject] = w
            return then(.refused)
        }
        if credit {
            w.units -= 1
            windows[subject] = w
            if !w.inFlight { claim(subject) }
            return then(.granted)
        }
        w.waiters.append(then)
        windows[subject] = w
        if !w.inFlight { claim(subject) }
    }

    /// Runs `then` once this worker holds a unit of `subject` or knows there is none left, claiming
    /// if needed: so a choice made later on the loop, at once, is made on what the database says.
    func ensureUnits(_ subject: String, limit: Int64, windowMs: Int64, then: @escaping () -> Void) {
        let now = Self.nowMs()
        var w = window(subject, .claim, limit: limit, windowMs: windowMs, now: now)
        w.lastUseMs = now
        if w.units > 0 || w.exhausted {
            windows[subject] = w
            return then()
        }
        w.watchers.append(then)
        windows[subject] = w
        if !w.inFlight { claim(subject) }
    }

    /// Gives back a unit taken for a request that was then refused for another reason.
    func giveBack(_ subject: String) {
        guard var w = windows[subject], w.mode == .claim, Self.nowMs() < w.resetAtMs || !w.known else { return }
        w.units += 1
        windows[subject] = w
    }

    /// False when the subject is known to have no room left in its current window.
    func hasRoom(_ subject: String, limit: Int64, windowMs: Int64, mode: Mode) -> Bool {
        let now = Self.nowMs()
        let w = window(subject, mode, limit: limit, windowMs: windowMs, now: now)
        windows[subject] = w
        switch mode {
        case .claim: return !(w.exhausted && w.units <= 0)
        case .tally:
            if !w.known && !w.inFlight { read(subject) }
            return !w.known || w.usedDB + w.pending + w.sending < w.limit
        }
    }

    private func claim(_ subject: String) {
        guard var w = windows[subject], !stopped else { return }
        let asked = max(1, Self.batch(w.limit) + Int64(w.waiters.count) + max(0, -w.units))
        w.inFlight = true
        windows[subject] = w
        statements += 1
        store.windows([WindowOp(subject: subject, kind: .claim, amount: asked, limit: w.limit, windowMs: w.windowMs)]) { [weak self] r in
            self?.claimed(subject, asked: asked, r)
        }
    }

    private func claimed(_ subject: String, asked: Int64, _ r: Result<[WindowState], StoreError>) {
        guard var w = windows[subject] else { return }
        w.inFlight = false
        let waiters = w.waiters
        let watchers = w.watchers
        w.waiters = []
        w.watchers = []
        defer { for f in watchers { f() } }
        guard case .success(let states) = r, let s = states.first else {
            windows[subject] = w
            for f in waiters { f(.unavailable) }
            return
        }
        if s.windowID != w.windowID {
            // A new window: what was held for the old one is void (credit taken is still repaid).
            w.units = min(w.units, 0)
        }
        apply(s, to: &w)
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
        windows[subject] = w
        if !w.waiters.isEmpty { claim(subject) }
        // Units held are given back by the sync after a second idle.
        if w.units > 0 { scheduleSync() }
        for f in answers { f(.granted) }
        for f in refusals { f(.refused) }
    }

    // MARK: Tallies (tokens, cost)

    /// Whether the window has room, reading it from the database first when this worker's copy is
    /// older than two syncs (a worker under load re-reads its tallies every sync, so it never waits).
    func check(_ subject: String, limit: Int64, windowMs: Int64, then: @escaping (Grant) -> Void) {
        let now = Self.nowMs()
        var w = window(subject, .tally, limit: limit, windowMs: windowMs, now: now)
        w.lastUseMs = now
        guard w.known && now - w.readAtMs <= 2 * syncMillis else {
            w.waiters.append(then)
            windows[subject] = w
            if !w.inFlight { read(subject) }
            return
        }
        windows[subject] = w
        scheduleSync()
        then(w.usedDB + w.pending + w.sending < w.limit ? .granted : .refused)
    }

    /// Adds what an answer used; sent with the next sync.
    func charge(_ subject: String, limit: Int64, windowMs: Int64, amount: Int64) {
        guard amount > 0 else { return }
        let now = Self.nowMs()
        var w = window(subject, .tally, limit: limit, windowMs: windowMs, now: now)
        w.lastUseMs = now
        w.pending += amount
        windows[subject] = w
        if w.usedDB + w.pending + w.sending >= w.limit && !syncInFlight {
            // This answer used up the window: every instance should refuse the next request now.
            if let t = syncTimer { loop.cancel(t); syncTimer = nil }
            sync()
        } else {
            scheduleSync()
        }
    }

    private func read(_ subject: String) {
        guard var w = windows[subject], !stopped else { return }
        w.inFlight = true
        windows[subject] = w
        statements += 1
        store.windows([WindowOp(subject: subject, kind: .read, amount: 0, limit: w.limit, windowMs: w.windowMs)]) { [weak self] r in
            guard let self, var w = self.windows[subject] else { return }
            w.inFlight = false
            let waiters = w.waiters
            w.waiters = []
            guard case .success(let states) = r, let s = states.first else {
                self.windows[subject] = w
                for f in waiters { f(.unavailable) }
                return
            }
            self.apply(s, to: &w)
            self.windows[subject] = w
            let grant: Grant = w.usedDB + w.pending + w.sending < w.limit ? .granted : .refused
            for f in waiters { f(grant) }
        }
    }

    // MARK: Readings

    func reading(_ subject: String) -> Reading? {
        guard let w = windows[subject], w.known else { return nil }
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
        var more = false
        for (subject, w) in windows {
            let idleMs = now - w.lastUseMs
            switch w.mode {
            case .tally:
                if w.pending > 0 {
                    ops.append(WindowOp(subject: subject, kind: .charge, amount: w.pending, limit: w.limit, windowMs: w.windowMs))
                    windows[subject]?.sending = w.pending
                    windows[subject]?.pending = 0
                } else if w.known && !w.inFlight && idleMs < 5_000 {
                    ops.append(WindowOp(subject: subject, kind: .read, amount: 0, limit: w.limit, windowMs: w.windowMs))
                }
                if idleMs < 5_000 { more = true }
            case .claim:
                if w.units > 0 && !w.inFlight && idleMs >= 1_000 && now < w.resetAtMs {
                    ops.append(WindowOp(subject: subject, kind: .release, amount: w.units, limit: w.limit, windowMs: w.windowMs,
                                        windowID: w.windowID))
                    windows[subject]?.units = 0
                } else if w.units > 0 {
                    more = true
                }
            }
            if idleMs > 120_000 && w.pending == 0 && w.sending == 0 && w.units == 0 && !w.inFlight && w.waiters.isEmpty
                && w.watchers.isEmpty {
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
                for s in states {
                    guard var w = self.windows[s.subject] else { continue }
                    if w.mode == .tally {
                        w.sending = 0
                        if !w.inFlight { self.apply(s, to: &w) }
                    }
                    self.windows[s.subject] = w
                }
            case .failure:
                // The charges go again with the next sync; released units are simply not given back.
                for op in ops where op.kind == .charge {
                    guard var w = self.windows[op.subject] else { continue }
                    w.pending += w.sending
                    w.sending = 0
                    self.windows[op.subject] = w
                }
            }
            self.scheduleSync()
        }
    }

    /// Sends what is pending now (drain), calling `done` when answered.
    func flush(_ done: @escaping () -> Void) {
        if let t = syncTimer { loop.cancel(t); syncTimer = nil }
        let pending = windows.contains { $0.value.pending > 0 }
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
        for (k, w) in windows where !w.waiters.isEmpty || !w.watchers.isEmpty {
            windows[k]?.waiters = []
            windows[k]?.watchers = []
            for f in w.waiters { f(.unavailable) }
            for f in w.watchers { f() }
        }
    }

    // MARK: State

    /// The subject's window, created on first use, rolled over locally once its end has passed.
    private func window(_ subject: String, _ mode: Mode, limit: Int64, windowMs: Int64, now: Int64) -> Window {
        guard var w = windows[subject] else { return Window(mode: mode, limit: limit, windowMs: windowMs) }
        // A key's limit may change while its window lives (an admin edit): the newest applies.
        w.limit = limit
        w.windowMs = windowMs
        if w.known && now >= w.resetAtMs {
            w.exhausted = false
            w.units = min(w.units, 0)
            // A tally starts the new window from zero; the next sync reads what others added.
            if w.mode == .tally { w.usedDB = 0 } else { w.known = false }
        }
        return w
    }

    private func apply(_ s: WindowState, to w: inout Window) {
        w.known = true
        w.readAtMs = Self.nowMs()
        w.usedDB = s.used
        w.windowID = s.windowID
        w.resetAtMs = Self.nowMs() + s.resetMs
        if w.mode == .tally { w.exhausted = false }
    }
}
