import Reactor
import Storage

/// The clients of one worker following answers that are not generated on this worker (another
/// worker or instance writes their progress). A notification on the progress channel (sent after
/// every batched progress write) makes the worker read those answers once for all of their
/// followers; a poll every second catches what a notification missed, and marks as
/// `interrupted` an answer whose instance is gone, so its followers end with that error within
/// seconds.
final class RemoteFollowers {
    private let loop: EventLoop
    private let store: ProgressStore
    private let listener: ProgressListener
    private var byMessage: [String: [ResumedStream]] = [:]
    private var pollTimer: TimerID?
    private var fetching: Set<String> = []
    private var refetch: Set<String> = []
    let pollMillis: Int64 = 1_000

    init(loop: EventLoop, pool: PGPool, listenConfiguration: PGConfiguration) {
        self.loop = loop
        store = ProgressStore(pool: pool)
        listener = ProgressListener(loop: loop, configuration: listenConfiguration)
        listener.onIDs = { [weak self] ids in self?.notified(ids) }
        listener.onListening = { [weak self] in
            guard let self else { return }
            self.fetch(Array(self.byMessage.keys))
        }
    }

    var count: Int { byMessage.values.reduce(0) { $0 + $1.count } }

    func add(_ s: ResumedStream) {
        listener.start()
        byMessage[s.messageID, default: []].append(s)
        s.onEnd = { [weak self] s in self?.remove(s) }
        schedulePoll()
    }

    private func remove(_ s: ResumedStream) {
        guard var list = byMessage[s.messageID] else { return }
        list.removeAll { $0 === s }
        byMessage[s.messageID] = list.isEmpty ? nil : list
    }

    private func notified(_ ids: [Substring]) {
        guard !byMessage.isEmpty else { return }
        let followed = ids.map(String.init).filter { byMessage[$0] != nil }
        if !followed.isEmpty { fetch(followed) }
    }

    /// Reads the answers and brings their followers up to date; one query per batch. An answer
    /// being read is read again after, rather than twice at once.
    private func fetch(_ ids: [String]) {
        var now: [String] = []
        for id in ids {
            if fetching.contains(id) { refetch.insert(id) } else { now.append(id) }
        }
        guard !now.isEmpty else { return }
        fetching.formUnion(now)
        store.answers(now) { [weak self] r in
            guard let self else { return }
            self.fetching.subtract(now)
            if case .success(let answers) = r {
                for a in answers { self.deliver(a) }
            }
            let again = Array(self.refetch)
            self.refetch = []
            if !again.isEmpty { self.fetch(again) }
        }
    }

    private func deliver(_ a: AnswerProgress) {
        for s in byMessage[a.id] ?? [] {
            if a.status == .streaming { s.catchUp(to: a.content) } else { s.finish(a) }
        }
    }

    private func schedulePoll() {
        guard pollTimer == nil else { return }
        pollTimer = loop.schedule(afterMillis: pollMillis) { [weak self] in
            guard let self else { return }
            self.pollTimer = nil
            let ids = Array(self.byMessage.keys)
            guard !ids.isEmpty else { return }
            self.store.markInterrupted(ids) { [weak self] _ in self?.fetch(ids) }
            self.schedulePoll()
        }
    }

    func close() {
        if let t = pollTimer { loop.cancel(t); pollTimer = nil }
        listener.close()
        for s in byMessage.values.flatMap({ $0 }) { s.end(writeClosing: nil) }
        byMessage = [:]
    }
}
