/// What a turn's answer comes from: a `ResilientUpstream` of its own, or an `AnswerCursor` on an
/// answer shared with identical requests (or replayed from the response cache).
protocol TurnUpstream: AnyObject {
    func start()
    func pause()
    func resume()
    func cancel()
    var isWaitingToRetry: Bool { get }
    var isHedging: Bool { get }
    var attempts: [AttemptRecord] { get }
    var attemptsStarted: Int { get }
    var lastAttemptStartedAt: UInt64 { get }
}

extension ResilientUpstream: TurnUpstream {}
