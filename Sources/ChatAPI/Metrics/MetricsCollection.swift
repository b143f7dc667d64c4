import HTTP
import Reactor

/// Gathers a process-wide snapshot for one scrape: the local worker's numbers now, the others'
/// through their loop inboxes (each answers into this loop's inbox). A worker that does not answer
/// within the deadline (stopped, or stuck) is left out rather than holding the scrape.
final class MetricsCollection {
    private final class Pending {
        var merged: MetricsSnapshot
        var awaiting: Int
        var timer: TimerID?
        let done: (MetricsSnapshot) -> Void
        init(merged: MetricsSnapshot, awaiting: Int, done: @escaping (MetricsSnapshot) -> Void) {
            self.merged = merged
            self.awaiting = awaiting
            self.done = done
        }
    }

    private unowned let loop: EventLoop
    private var pending: [Int: Pending] = [:]
    private var nextID = 0

    init(loop: EventLoop) { self.loop = loop }

    /// `others`: the handles of the other workers; each must own a loop whose `owner` is a `Worker`.
    func collect(local: MetricsSnapshot, others: [LoopHandle], deadlineMillis: Int64 = 1_000,
                 done: @escaping (MetricsSnapshot) -> Void) {
        guard !others.isEmpty else { done(local); return }
        nextID += 1
        let id = nextID
        let p = Pending(merged: local, awaiting: others.count, done: done)
        pending[id] = p
        p.timer = loop.schedule(afterMillis: deadlineMillis) { [weak self] in self?.finish(id) }
        let reply = loop.handle
        for other in others {
            other.run { remoteLoop in
                guard let worker = remoteLoop.owner as? Worker else { return }
                let snapshot = worker.metricsSnapshot()
                reply.run { homeLoop in (homeLoop.owner as? Worker)?.metricsCollection.receive(id, snapshot) }
            }
        }
    }

    func receive(_ id: Int, _ snapshot: MetricsSnapshot) {
        guard let p = pending[id] else { return }  // arrived after the deadline
        p.merged.merge(snapshot)
        p.awaiting -= 1
        if p.awaiting == 0 { finish(id) }
    }

    private func finish(_ id: Int) {
        guard let p = pending.removeValue(forKey: id) else { return }
        if let t = p.timer { loop.cancel(t) }
        p.done(p.merged)
    }
}
