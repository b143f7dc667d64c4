import Providers
import Reactor
import Storage

/// One answer that several identical requests receive: generated once by its own upstream (or
/// loaded from the cache), kept whole in memory while anyone reads it, and read by each client
/// through its own `AnswerCursor` at that client's pace. The answer's text is held once, however
/// many read it; a slow reader lags behind in it and never slows the upstream or the others
/// (docs/API.md, "Response cache").
final class SharedAnswer: ResilientUpstreamDelegate {
    let key: CacheKey
    /// Loaded from the cache: complete from the start, and nobody pays for it.
    private(set) var fromCache = false
    private(set) var pieces: [String] = []
    private(set) var usage: Usage?
    private(set) var finish: FinishReason?
    private(set) var error: ProviderError?
    private(set) var accepted = false
    private(set) var ended = false
    private(set) var committedRoute: RoutedModel?
    private(set) var upstream: ResilientUpstream?
    private var cursors: [AnswerCursor] = []
    /// Called once the answer is over (the cache keeps it, the in-flight table forgets it).
    var onEnd: ((SharedAnswer) -> Void)?

    /// An answer being looked up, then filled from the cache or started live.
    init(key: CacheKey) {
        self.key = key
    }

    /// The cache had it: the whole answer is here at once.
    func fill(_ cached: CachedAnswer) {
        fromCache = true
        pieces = cached.pieces
        if let u = cached.usage, let p = u.promptTokens, let c = u.completionTokens {
            usage = Usage(promptTokens: p, completionTokens: c, totalTokens: p + c)
        }
        finish = cached.finishReason.map { FinishReason(FinishReason.Normalized(rawValue: $0) ?? .stop, raw: $0) }
        accepted = true
        end(nil)
    }

    /// Nobody is left to read a live answer before it started.
    func abandon() {
        end(ProviderError(.upstreamError, "every client left"))
    }

    var text: String { pieces.joined() }

    func start(_ upstream: ResilientUpstream) {
        self.upstream = upstream
        upstream.start()
    }

    func attach(_ c: AnswerCursor) { cursors.append(c) }

    /// A reader left. When the last one leaves before the end, nobody wants the answer any more
    /// (each reader already applied its own disconnect policy), so the upstream stops.
    func detach(_ c: AnswerCursor) {
        cursors.removeAll { $0 === c }
        if cursors.isEmpty && !ended {
            upstream?.cancel()
            upstream = nil
            end(ProviderError(.upstreamError, "every client left"))
        }
    }

    var readers: Int { cursors.count }

    // MARK: ResilientUpstreamDelegate

    func upstreamDidStart() {
        accepted = true
        for c in cursors { c.pump() }
    }

    func upstreamDidReceive(_ event: StreamEvent) {
        switch event {
        case .text(let t):
            guard !t.isEmpty else { return }
            pieces.append(t)
            for c in cursors { c.pump() }
        case .usage(let u): usage = u
        case .finish(let f): finish = f
        case .done, .error: break
        }
    }

    func upstreamDidCommit(_ route: RoutedModel) {
        committedRoute = route
        for c in cursors { c.pump() }
    }

    /// Shared answers are started without mid-stream restarts: a restart would void text that
    /// readers at their own pace have already shown.
    func upstreamWillRestart(after error: ProviderError, on route: RoutedModel) {}

    func upstreamDidEnd(_ error: ProviderError?) {
        end(error)
    }

    private func end(_ error: ProviderError?) {
        guard !ended else { return }
        ended = true
        self.error = error
        for c in cursors { c.pump() }
        onEnd?(self)
        onEnd = nil
    }
}

/// One client's reading of a `SharedAnswer`, in the shape of an upstream: the turn it belongs to
/// sees the usual start, commit, text, usage, finish and end, and pauses it like an upstream when
/// its client is slow, which only stops this reader.
final class AnswerCursor: TurnUpstream {
    let answer: SharedAnswer
    private weak var delegate: ResilientUpstreamDelegate?
    /// The reader that caused the upstream call pays for it; the others (joined, or served from
    /// the cache) do not.
    let pays: Bool
    private var next = 0
    private var paused = false
    private var started = false
    private var committed = false
    private var done = false
    private var pumping = false

    init(answer: SharedAnswer, pays: Bool, delegate: ResilientUpstreamDelegate) {
        self.answer = answer
        self.pays = pays
        self.delegate = delegate
    }

    func start() {
        answer.attach(self)
        pump()
    }

    func pause() { paused = true }

    func resume() {
        paused = false
        pump()
    }

    func cancel() {
        guard !done else { return }
        done = true
        delegate = nil
        answer.detach(self)
    }

    /// Hands the turn everything of the answer it has not had, until its client stops reading.
    func pump() {
        // Re-entered from the turn's own writes (a resume inside a write): the outer loop goes on.
        guard !pumping, !done else { return }
        pumping = true
        defer { pumping = false }
        if answer.accepted, !started {
            started = true
            delegate?.upstreamDidStart()
        }
        if let r = answer.committedRoute, !committed {
            committed = true
            delegate?.upstreamDidCommit(r)
        }
        while !paused, !done, next < answer.pieces.count {
            let piece = answer.pieces[next]
            next += 1
            delegate?.upstreamDidReceive(.text(piece))
        }
        guard !done, answer.ended, next == answer.pieces.count else { return }
        done = true
        let d = delegate
        delegate = nil
        if let u = answer.usage { d?.upstreamDidReceive(.usage(u)) }
        if let f = answer.finish { d?.upstreamDidReceive(.finish(f)) }
        answer.detach(self)
        d?.upstreamDidEnd(answer.error)
    }

    var isWaitingToRetry: Bool { answer.upstream?.isWaitingToRetry ?? false }
    var isHedging: Bool { answer.upstream?.isHedging ?? false }
    var attempts: [AttemptRecord] { answer.upstream?.attempts ?? [] }
    var attemptsStarted: Int { answer.upstream?.attemptsStarted ?? 0 }
    var lastAttemptStartedAt: UInt64 { answer.upstream?.lastAttemptStartedAt ?? 0 }
}
