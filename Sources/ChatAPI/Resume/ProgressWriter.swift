import Reactor
import Storage

/// Saves the text of this worker's answers in progress, so a client that lost its connection can
/// resume on any instance: every `intervalMillis`, ONE row for all of the worker's answers that
/// grew (only what is new), in one round trip that also notifies the progress channel of their
/// ids and of the answers stored as final since the last write, and now and then deletes the
/// worker's rows that no answer in progress needs. Nothing is written per token or per answer;
/// an interval with nothing new writes nothing.
final class ProgressWriter {
    private let loop: EventLoop
    private let store: ProgressStore
    private let writer: String
    private let worker: Int
    let intervalMillis: Int64
    /// The next row's number; starts from the clock so a restarted worker never reuses one.
    private(set) var nextSeq: Int64
    private var lastPruneMs: Int64 = 0
    private var timer: TimerID?
    private var inFlight = false
    private var ended: [String] = []
    /// Statements sent, for the bench.
    private(set) var statements = 0
    /// Where the answers in progress are: the worker's live turns.
    var turns: () -> [ChatTurn] = { [] }

    init(loop: EventLoop, pool: PGPool, writer: String, worker: Int, intervalMillis: Int) {
        self.loop = loop
        store = ProgressStore(pool: pool)
        self.writer = writer
        self.worker = worker
        self.intervalMillis = Int64(intervalMillis)
        nextSeq = wallClockMillis() * 1_000
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
        var oldest = nextSeq
        let live = turns()
        for t in live {
            oldest = min(oldest, t.progressFirstSeq)
            guard let p = t.unsavedProgress() else { continue }
            deltas.append(p.delta)
            taken.append((t, p.bytes, p.restarts))
        }
        let endedNow = ended
        ended = []
        // Rows before the oldest answer in progress are no one's any more: deleted every 5 s, and
        // all of them once the worker has no answer in progress.
        let now = Int64(monotonicNanos() / 1_000_000)
        let prune: Int64? = now - lastPruneMs >= 5_000 || live.isEmpty ? oldest : nil
        guard !deltas.isEmpty || !endedNow.isEmpty || prune != nil else { return }
        if prune != nil { lastPruneMs = now }
        inFlight = true
        statements += 1
        let seq = nextSeq
        nextSeq += 1
        store.write(writer: writer, worker: worker, seq: seq, deltas, ended: endedNow, pruneBelow: prune) { [weak self] r in
            guard let self else { return }
            self.inFlight = false
            switch r {
            case .success:
                for t in taken { t.turn.progressSaved(bytes: t.bytes, restarts: t.restarts) }
            case .failure:
                // Sent again with what comes next (the saved offsets did not move).
                self.ended.append(contentsOf: endedNow)
            }
            if !taken.isEmpty || !self.ended.isEmpty || !self.turns().isEmpty { self.schedule() }
        }
    }

    func stop() {
        if let t = timer { loop.cancel(t); timer = nil }
    }
}
