import Reactor
import Storage

/// Concurrent-stream limits across instances: each instance holds slots in PostgreSQL (rows per
/// subject and instance, within the limit across every live instance) and hands them to its
/// streams. A slot freed here is kept half a second for the next stream of the same key, so a
/// steady load claims nothing, then given back so other instances can use it. Slots of an
/// instance that died are dropped by the next claim (its sessions are gone from
/// `pg_stat_activity`).
final class StreamSlots {
    private struct Subject {
        var limit: Int
        var held = 0
        var active = 0
        var inFlight = false
        var waiters: [(Grant) -> Void] = []
        var freedAtMs: Int64 = 0
        /// A claim just found no room: refuse without asking again until then.
        var fullUntilMs: Int64 = 0
    }

    private let loop: EventLoop
    private let store: LimitStore
    private var subjects: [String: Subject] = [:]
    private var timer: TimerID?
    private var stopped = false
    let keepMillis: Int64 = 500
    /// Statements sent, for metrics.
    private(set) var statements = 0

    init(loop: EventLoop, store: LimitStore) {
        self.loop = loop
        self.store = store
    }

    /// A slot when one is held here (or a refusal when a claim just found none): nil when the
    /// database must be asked.
    func acquireNow(_ subject: String, limit: Int) -> Grant? {
        guard var s = subjects[subject] else { return nil }
        s.limit = limit
        if s.held > s.active {
            s.active += 1
            subjects[subject] = s
            return .granted
        }
        return SharedWindows.nowMs() < s.fullUntilMs ? .refused : nil
    }

    func acquire(_ subject: String, limit: Int, then: @escaping (Grant) -> Void) {
        if let g = acquireNow(subject, limit: limit) { return then(g) }
        var s = subjects[subject] ?? Subject(limit: limit)
        s.limit = limit
        s.waiters.append(then)
        subjects[subject] = s
        if !s.inFlight { claim(subject) }
    }

    func release(_ subject: String) {
        guard var s = subjects[subject], s.active > 0 else { return }
        s.active -= 1
        s.freedAtMs = SharedWindows.nowMs()
        s.fullUntilMs = 0
        subjects[subject] = s
        scheduleReturn()
    }

    /// Streams this worker holds for `subject`, and slots held in all by every instance at the
    /// last claim (for headers).
    func active(_ subject: String) -> Int { subjects[subject]?.active ?? 0 }

    /// Slots claimed beyond the streams waiting, for a key with room to spare (64 or more): a
    /// growing load then claims in a few steps instead of one stream at a time.
    static func ahead(limit: Int, streams: Int) -> Int { limit < 64 ? 0 : min(32, max(1, streams / 8)) }

    private func claim(_ subject: String) {
        guard var s = subjects[subject], !stopped else { return }
        s.inFlight = true
        let want = s.waiters.count + Self.ahead(limit: s.limit, streams: s.active + s.waiters.count)
        subjects[subject] = s
        statements += 1
        store.slots([(subject, want, s.limit)]) { [weak self] r in
            guard let self, var s = self.subjects[subject] else { return }
            s.inFlight = false
            let waiters = s.waiters
            s.waiters = []
            guard case .success(let rows) = r, let row = rows.first else {
                self.subjects[subject] = s
                for f in waiters { f(.unavailable) }
                return
            }
            s.held += row.granted
            let full = row.granted < want
            var answers: [((Grant) -> Void, Grant)] = []
            for f in waiters {
                if s.held > s.active {
                    s.active += 1
                    answers.append((f, .granted))
                } else if full {
                    answers.append((f, .refused))
                } else {
                    // Arrived while the claim was in flight: claimed for next.
                    s.waiters.append(f)
                }
            }
            if full { s.fullUntilMs = SharedWindows.nowMs() + 100 }
            self.subjects[subject] = s
            if !s.waiters.isEmpty { self.claim(subject) }
            for (f, g) in answers { f(g) }
        }
    }

    private func scheduleReturn() {
        guard timer == nil, !stopped else { return }
        timer = loop.schedule(afterMillis: keepMillis) { [weak self] in
            self?.timer = nil
            self?.giveBackIdle()
        }
    }

    private func giveBackIdle() {
        let now = SharedWindows.nowMs()
        var changes: [(subject: String, delta: Int, limit: Int)] = []
        var later = false
        for (k, s) in subjects where s.held > s.active && !s.inFlight {
            if now - s.freedAtMs >= keepMillis {
                changes.append((k, -(s.held - s.active), s.limit))
                subjects[k]?.held = s.active
            } else {
                later = true
            }
        }
        for (k, s) in subjects where s.held == 0 && s.active == 0 && !s.inFlight && s.waiters.isEmpty { subjects[k] = nil }
        if later { scheduleReturn() }
        guard !changes.isEmpty else { return }
        statements += 1
        store.slots(changes) { _ in }
    }

    /// Gives every slot back (drain, shutdown); `done` when answered.
    func releaseAll(_ done: @escaping () -> Void) {
        stopped = true
        if let t = timer { loop.cancel(t); timer = nil }
        let changes = subjects.compactMap { k, s in s.held > 0 ? (subject: k, delta: -s.held, limit: s.limit) : nil }
        for (k, s) in subjects {
            subjects[k]?.waiters = []
            for f in s.waiters { f(.unavailable) }
        }
        subjects = [:]
        guard !changes.isEmpty else { return done() }
        store.slots(changes) { _ in done() }
    }
}
