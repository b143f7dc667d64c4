import Reactor
import Storage

/// Saves the text of this worker's answers in progress, so a client that lost its connection can
/// resume on any instance: every `intervalMillis`, ONE statement for all of the worker's answers
/// that grew (only what is new is sent, appended to what is stored), which also notifies the
/// progress channel of their ids and of the answers stored as final since the last write.
/// Nothing is written per token; an interval with nothing new writes nothing.
final class ProgressWriter {
    private let loop: EventLoop
    private let store: ProgressStore
    let intervalMillis: Int64
    private var timer: TimerID?
    private var inFlight = false
    private var ended: [String] = []
    /// Statements sent, for the bench.
    private(set) var statements = 0
    /// Where the answers in progress are: the worker's live turns.
    var turns: () -> [ChatTurn] = { [] }

    init(loop: EventLoop, pool: PGPool, intervalMillis: Int) {
        self.loop = loop
        store = ProgressStore(pool: pool)
        self.intervalMillis = Int64(intervalMillis)
    }

    /// An answer now stored as final: its followers elsewhere are told with the next write.
    func answerEnded(_ id: String) {
        guard intervalMillis > 0 else { return }
        ended.append(id)
        schedule()
    }

    /// A turn has new text: a write is due within the interval.
    func schedule() {
        guard intervalMillis > 0, timer == nil else { return }
        timer = loop.schedule(afterMillis: intervalMillis) { [weak self] in
            self?.timer = nil
            self?.write()
        }
    }

    private func write() {
        guard !inFlight else { return schedule() }
        var deltas: [ProgressDelta] = []
        var taken: [(turn: ChatTurn, bytes: Int, restarts: Int)] = []
        for t in turns() {
            guard let p = t.unsavedProgress() else { continue }
            deltas.append(p.delta)
            taken.append((t, p.bytes, p.restarts))
        }
        let endedNow = ended
        ended = []
        guard !deltas.isEmpty || !endedNow.isEmpty else { return }
        inFlight = true
        statements += 1
        store.write(deltas, ended: endedNow) { [weak self] r in
            guard let self else { return }
            self.inFlight = false
            switch r {
            case .success:
                for t in taken { t.turn.progressSaved(bytes: t.bytes, restarts: t.restarts) }
            case .failure:
                // Sent again with what comes next (the saved offsets did not move).
                self.ended.append(contentsOf: endedNow)
            }
            if !taken.isEmpty || !self.ended.isEmpty { self.schedule() }
        }
    }

    func stop() {
        if let t = timer { loop.cancel(t); timer = nil }
    }
}
