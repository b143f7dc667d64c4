import Providers
import Reactor

/// What a turn hears from its resilient upstream beyond one stream's events.
protocol ResilientUpstreamDelegate: UpstreamStreamDelegate {
    /// An attempt delivered the turn's first token: from here its route answers.
    func upstreamDidCommit(_ route: RoutedModel)
    /// The answering attempt failed mid-stream and the model opted in to `restart`: what was
    /// sent is void, and the answer starts again on `route`.
    func upstreamWillRestart(after error: ProviderError, on route: RoutedModel)
}

/// One chat turn's upstream work across attempts (docs/resilience.md): it picks deployments by
/// weight and load, skips open breakers and full deployments, retries retryable failures with
/// backoff and Retry-After within the turn's attempt and time budget, falls back to other
/// models, hedges a slow first token, and never splices two answers: once a token has gone to
/// the client only that attempt speaks (or, with `restart`, a new answer starts from scratch).
/// To the turn it looks like one `UpstreamStream`.
final class ResilientUpstream: UpstreamStream {
    private unowned let service: ChatService
    private weak var delegate: ResilientUpstreamDelegate?
    private let request: SharedRequest
    private var plan: TurnPlan
    private let startedAt: UInt64
    private let restartMidstream: Bool
    private let hedgeAfterMs: Int?

    /// Attempts that may still deliver; at most two (a slow one and its hedge).
    private var running: [Attempt] = []
    private var committed: Attempt?
    private(set) var attempts: [AttemptRecord] = []
    /// The route the answer comes (or came) from; the first one tried until a token arrives.
    private(set) var route: RoutedModel
    private var startForwarded = false
    private var paused = false
    private var ended = false
    private var backoffTimer: TimerID?
    private var hedgeTimer: TimerID?
    /// Boxed: set only once an attempt failed, and inline it took a hundred-odd bytes of every turn.
    private var lastFailure: Failure?
    private var lastError: ProviderError? {
        get { lastFailure?.error }
        set { lastFailure = newValue.map(Failure.init) }
    }

    private final class Failure {
        let error: ProviderError
        init(_ error: ProviderError) { self.error = error }
    }

    /// True while nothing is in flight because a retry waits for its backoff.
    var isWaitingToRetry: Bool { backoffTimer != nil }
    var isHedging: Bool { running.count > 1 }
    var hasCommitted: Bool { committed != nil }
    /// Attempts begun so far (Server-Timing's count), and when the latest began.
    private(set) var attemptsStarted = 0
    private(set) var lastAttemptStartedAt: UInt64 = 0

    init(service: ChatService, request: SharedRequest, route: RoutedModel, requestFallbacks: [String]?, restartAllowed: Bool,
         delegate: ResilientUpstreamDelegate) {
        self.service = service
        self.delegate = delegate
        self.request = request
        self.route = route
        plan = TurnPlan(primary: route, catalog: service.catalog, requestFallbacks: requestFallbacks)
        startedAt = monotonicNanos()
        // A restart announces itself with an event only /api/v1/chat has.
        restartMidstream = route.resilience.restartMidstream && restartAllowed
        hedgeAfterMs = route.resilience.hedgeAfterMs
    }

    /// Starts the first attempt, on the deployment the plan picks by weight, load and breaker; when
    /// none can take it the turn ends at once with the error.
    func start() {
        guard let first = plan.next(nowMs: nowMs, excluding: [], hasRoom: { [unowned self] in self.hasRoom($0) }, random: { service.nextRandom() }) else {
            giveUp()
            return
        }
        // Usually the plan picks the deployment the turn was routed to, from the same catalog
        // entry: the route already held then serves, and the plan's equal copy (its own
        // allocation) is dropped.
        let same = route.entry != nil && first.route.name == route.name && first.route.deployment.id == route.deployment.id
            && first.route.model == route.model
        if !same { route = first.route }
        launch(route, hedge: false)
    }

    // MARK: UpstreamStream

    func pause() {
        paused = true
        for a in running { a.stream?.pause() }
    }

    func resume() {
        paused = false
        for a in running { a.stream?.resume() }
    }

    func cancel() {
        guard !ended else { return }
        ended = true
        cancelTimers()
        for a in running { finish(a, outcome: .cancelled, error: nil) }
        running.removeAll()
        delegate = nil
    }

    // MARK: Attempts

    private var nowMs: Int64 { Int64(monotonicNanos() / 1_000_000) }
    private var elapsedMs: Int { Int((monotonicNanos() &- startedAt) / 1_000_000) }

    /// Starts `route` if its deployment admits it (breaker, max_concurrent); else the next one.
    private func launch(_ first: RoutedModel, hedge: Bool) {
        var candidate: RoutedModel? = first
        while let r = candidate {
            let health = r.deployment.health
            let admission = health.admit(nowMs: nowMs)
            if let t = admission.transition { service.breakerChanged(r.deployment, t) }
            if admission.allowed {
                if health.acquire(limit: r.deployment.maxConcurrent) {
                    begin(r, hedge: hedge, trial: admission.trial)
                    return
                }
                if admission.trial { health.abandonTrial() }
            }
            // Not admitted: it counts as tried, and the plan moves on.
            plan.noteAttempt(r)
            let next = plan.next(nowMs: nowMs, excluding: Set(running.map(\.route.deployment.id)), hasRoom: { [unowned self] in self.hasRoom($0) }, random: { service.nextRandom() })
            candidate = next?.route
            if next?.isFallback == true { service.resilienceMetrics.fallback() }
        }
        if hedge { return }  // nothing to hedge with; the first attempt goes on
        if running.isEmpty { giveUp() }
    }

    private func begin(_ r: RoutedModel, hedge: Bool, trial: Bool) {
        plan.noteAttempt(r)
        service.deploymentLimits.started(r.deployment)
        let attempt = Attempt(owner: self, route: r, hedge: hedge, trial: trial)
        running.append(attempt)
        attemptsStarted += 1
        lastAttemptStartedAt = attempt.startedAt
        service.resilienceMetrics.attemptStarted(retry: !hedge && !attempts.isEmpty)
        switch service.makeUpstream(request.value, route: r, delegate: attempt) {
        case .success(let s):
            attempt.stream = s
            if paused { s.pause() }
            if !hedge, committed == nil, let after = hedgeAfterMs { scheduleHedge(after) }
        case .failure(let e):
            // Could not even be built (a key gone, an id the provider cannot take): a failed attempt.
            attemptFailed(attempt, e)
        }
    }

    private func scheduleHedge(_ afterMs: Int) {
        if let t = hedgeTimer { service.loop.cancel(t) }
        hedgeTimer = service.loop.schedule(afterMillis: Int64(afterMs)) { [weak self] in
            guard let self else { return }
            self.hedgeTimer = nil
            guard !self.ended, self.committed == nil, self.running.count == 1 else { return }
            let busy = Set(self.running.map(\.route.deployment.id))
            guard self.attempts.count + self.running.count < self.plan.policy.maxAttempts,
                  let next = self.plan.next(nowMs: self.nowMs, excluding: busy, hasRoom: { [unowned self] in self.hasRoom($0) }, random: { self.service.nextRandom() }),
                  !next.isRetry else { return }
            self.service.resilienceMetrics.hedgeStarted()
            self.launch(next.route, hedge: true)
        }
    }

    /// The turn's last resort: no attempt can start. The error is the last failure's, or why
    /// nothing could be tried.
    /// A deployment at its own rpm/tpm is passed over; noted, so a turn that finds every one of
    /// them full is refused as rate limited (429), not as an outage.
    private func hasRoom(_ d: Deployment) -> Bool {
        if d.rpm == nil && d.tpm == nil { return true }
        let room = service.deploymentLimits.hasRoom(d)
        if !room { skippedForLimit = true }
        return room
    }

    private var skippedForLimit = false

    private func giveUp() {
        guard !ended else { return }
        ended = true
        cancelTimers()
        let e = lastError ?? (skippedForLimit
            ? ProviderError(.rateLimited, "every deployment of model '\(route.name)' is at its requests or tokens per minute; try again shortly",
                            upstreamStatus: nil, retryAfter: 1)
            : ProviderError(.overloaded, "no deployment of model '\(route.name)' can take a request now (circuit open or at max_concurrent)",
                            upstreamStatus: nil))
        let d = delegate
        delegate = nil
        d?.upstreamDidEnd(e)
    }

    // MARK: Events from attempts

    fileprivate func attemptStarted(_ a: Attempt) {
        guard !ended, !startForwarded else { return }
        startForwarded = true
        delegate?.upstreamDidStart()
    }

    fileprivate func attemptReceived(_ a: Attempt, _ event: StreamEvent) {
        guard !ended else { return }
        if committed == nil {
            guard case .text(let t) = event, !t.isEmpty else {
                // Finish and usage before any text are held until this attempt wins (or ends).
                a.held.append(event)
                return
            }
            commit(a)
        }
        guard committed === a else { return }
        delegate?.upstreamDidReceive(event)
    }

    private func commit(_ a: Attempt) {
        committed = a
        route = a.route
        if let t = hedgeTimer { service.loop.cancel(t); hedgeTimer = nil }
        if a.hedge { service.resilienceMetrics.hedgeWon() }
        // The other attempt (a hedge or the slow original) stops at once and costs no more bytes.
        for other in running where other !== a { finish(other, outcome: .cancelled, error: nil) }
        running = [a]
        delegate?.upstreamDidCommit(a.route)
        for e in a.held { delegate?.upstreamDidReceive(e) }
        a.held.removeAll()
    }

    fileprivate func attemptEnded(_ a: Attempt, _ error: ProviderError?) {
        guard !ended, running.contains(where: { $0 === a }) else { return }
        guard let error else {
            if committed == nil { commit(a) }
            finish(a, outcome: .ok, error: nil)
            running.removeAll { $0 === a }
            ended = true
            cancelTimers()
            let d = delegate
            delegate = nil
            d?.upstreamDidEnd(nil)
            return
        }
        attemptFailed(a, error)
    }

    private func attemptFailed(_ a: Attempt, _ error: ProviderError) {
        finish(a, outcome: .failed, error: error)
        running.removeAll { $0 === a }
        lastError = error
        if committed === a {
            committed = nil
            // After the first token nothing is spliced: restart from scratch if the model asks, else end.
            if restartMidstream, attempts.count < plan.policy.maxAttempts,
               let next = plan.next(nowMs: nowMs, excluding: [], hasRoom: { [unowned self] in self.hasRoom($0) }, random: { service.nextRandom() }) {
                if next.isFallback { service.resilienceMetrics.fallback() }
                service.resilienceMetrics.restarted()
                route = next.route
                delegate?.upstreamWillRestart(after: error, on: next.route)
                launch(next.route, hedge: false)
                return
            }
            end(with: error)
            return
        }
        // A hedge pair: the other one carries on.
        if !running.isEmpty { return }
        guard RetryClassifier.isRetryable(error) else { end(with: error); return }
        guard attempts.count < plan.policy.maxAttempts, elapsedMs < plan.policy.budgetMs,
              let next = plan.next(nowMs: nowMs, excluding: [], hasRoom: { [unowned self] in self.hasRoom($0) }, random: { service.nextRandom() }) else {
            end(with: error)
            return
        }
        if next.isFallback { service.resilienceMetrics.fallback() }
        guard next.isRetry else {
            launch(next.route, hedge: false)
            return
        }
        // The same deployment again: back off (the provider's Retry-After when it sent one).
        let sameDeploymentRetries = attempts.filter { $0.deployment == next.route.deployment.id && $0.model == next.route.name }.count - 1
        let delay = plan.policy.backoffMs(retry: max(0, sameDeploymentRetries), retryAfterSeconds: error.retryAfter,
                                          random: service.nextRandom())
        guard elapsedMs + delay < plan.policy.budgetMs else { end(with: error); return }
        backoffTimer = service.loop.schedule(afterMillis: Int64(delay)) { [weak self] in
            guard let self, !self.ended else { return }
            self.backoffTimer = nil
            self.launch(next.route, hedge: false)
        }
    }

    private func end(with error: ProviderError) {
        ended = true
        cancelTimers()
        for r in running { finish(r, outcome: .cancelled, error: nil) }
        running.removeAll()
        let d = delegate
        delegate = nil
        d?.upstreamDidEnd(error)
    }

    /// Records the attempt, settles its slot and breaker, and stops its stream when cancelled.
    private func finish(_ a: Attempt, outcome: AttemptRecord.Outcome, error: ProviderError?) {
        guard !a.finished else { return }
        a.finished = true
        if outcome == .cancelled { a.stream?.cancel() }
        a.stream = nil
        let health = a.route.deployment.health
        health.release()
        var transition: BreakerTransition?
        switch outcome {
        case .ok:
            transition = health.recordSuccess(nowMs: nowMs)
        case .failed:
            if let e = error, RetryClassifier.isRetryable(e) || e.kind == .unauthorized {
                transition = health.recordFailure(nowMs: nowMs, retryAfterMs: e.retryAfter.map { Int($0 * 1000) })
            } else if a.trial {
                health.abandonTrial()
            }
        case .cancelled:
            if a.trial { health.abandonTrial() }
        }
        if let transition { service.breakerChanged(a.route.deployment, transition) }
        let record = AttemptRecord(model: a.route.name, deployment: a.route.deployment.id, outcome: outcome,
                                   status: error?.upstreamStatus, error: error.map { $0.apiType },
                                   ms: Int((monotonicNanos() &- a.startedAt) / 1_000_000), hedge: a.hedge)
        attempts.append(record)
        service.resilienceMetrics.attemptEnded(a.route.deployment.id, outcome)
    }

    private func cancelTimers() {
        if let t = backoffTimer { service.loop.cancel(t); backoffTimer = nil }
        if let t = hedgeTimer { service.loop.cancel(t); hedgeTimer = nil }
    }
}

/// One attempt: a provider stream on one deployment, reporting to its turn's ResilientUpstream.
private final class Attempt: UpstreamStreamDelegate {
    unowned let owner: ResilientUpstream
    let route: RoutedModel
    let hedge: Bool
    /// The half-open breaker's one trial request.
    let trial: Bool
    let startedAt = monotonicNanos()
    var stream: UpstreamStream?
    var held: [StreamEvent] = []
    var finished = false

    init(owner: ResilientUpstream, route: RoutedModel, hedge: Bool, trial: Bool) {
        self.owner = owner
        self.route = route
        self.hedge = hedge
        self.trial = trial
    }

    func upstreamDidStart() { owner.attemptStarted(self) }
    func upstreamDidReceive(_ event: StreamEvent) { owner.attemptReceived(self, event) }
    func upstreamDidEnd(_ error: ProviderError?) {
        stream = nil
        owner.attemptEnded(self, error)
    }
}
