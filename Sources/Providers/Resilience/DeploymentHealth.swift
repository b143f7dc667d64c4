import Synchronization

/// What a breaker did, for the one log line each change gets.
public enum BreakerTransition: String, Sendable, Equatable {
    case opened, halfOpen = "half_open", closed
}

/// A deployment's live state, shared by every worker of the instance: streams in flight (for
/// `max_concurrent` and least-loaded choice) and its circuit breaker. Workers are threads, so
/// this is the one routing object they share; the counter is an atomic and the breaker a small
/// lock taken once per attempt, never per token.
public final class DeploymentHealth: Sendable {
    public enum State: Int, Sendable { case closed = 0, open = 1, halfOpen = 2 }

    private let inFlightCount = Atomic<Int>(0)
    private let breaker: Mutex<Breaker>
    public let policy: BreakerPolicy

    struct Breaker {
        var state = State.closed
        var consecutiveFailures = 0
        var openUntilMs: Int64 = 0
        var trialInFlight = false
        /// Outcomes of the current window: start time, requests, failures.
        var windowStartMs: Int64 = 0
        var requests = 0
        var failures = 0
    }

    public init(policy: BreakerPolicy = BreakerPolicy()) {
        self.policy = policy
        breaker = Mutex(Breaker())
    }

    public var inFlight: Int { inFlightCount.load(ordering: .relaxed) }
    public var state: State { breaker.withLock { $0.state } }

    /// Takes a stream slot unless `limit` are already taken.
    public func acquire(limit: Int?) -> Bool {
        guard let limit else {
            inFlightCount.add(1, ordering: .relaxed)
            return true
        }
        var current = inFlightCount.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = inFlightCount.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    public func release() { inFlightCount.subtract(1, ordering: .relaxed) }

    /// Whether a request may go now. An open breaker whose cooldown is over lets exactly one
    /// trial through (half-open); the transition is returned so it is logged once.
    public func admit(nowMs: Int64) -> (allowed: Bool, trial: Bool, transition: BreakerTransition?) {
        breaker.withLock { b in
            switch b.state {
            case .closed:
                return (true, false, nil)
            case .open:
                guard nowMs >= b.openUntilMs else { return (false, false, nil) }
                b.state = .halfOpen
                b.trialInFlight = true
                return (true, true, .halfOpen)
            case .halfOpen:
                if b.trialInFlight { return (false, false, nil) }
                b.trialInFlight = true
                return (true, true, nil)
            }
        }
    }

    /// Is the deployment usable now, without taking the trial slot (for choosing among several).
    public func isAdmissible(nowMs: Int64) -> Bool {
        breaker.withLock { b in
            switch b.state {
            case .closed: return true
            case .open: return nowMs >= b.openUntilMs
            case .halfOpen: return !b.trialInFlight
            }
        }
    }

    public func recordSuccess(nowMs: Int64) -> BreakerTransition? {
        breaker.withLock { b in
            count(&b, failed: false, nowMs: nowMs)
            b.consecutiveFailures = 0
            guard b.state != .closed else { return nil }
            b.state = .closed
            b.trialInFlight = false
            b.requests = 0
            b.failures = 0
            b.windowStartMs = nowMs
            return .closed
        }
    }

    /// A failed attempt; `retryAfterMs` stretches the cooldown to what the provider asked for.
    public func recordFailure(nowMs: Int64, retryAfterMs: Int?) -> BreakerTransition? {
        breaker.withLock { b in
            count(&b, failed: true, nowMs: nowMs)
            b.consecutiveFailures += 1
            let cooldown = Int64(max(policy.cooldownMs, retryAfterMs ?? 0))
            switch b.state {
            case .halfOpen:
                b.state = .open
                b.trialInFlight = false
                b.openUntilMs = nowMs + cooldown
                return .opened
            case .open:
                b.openUntilMs = max(b.openUntilMs, nowMs + cooldown)
                return nil
            case .closed:
                let rateTripped = policy.errorRate <= 1 && b.requests >= policy.minRequests
                    && Double(b.failures) >= policy.errorRate * Double(b.requests)
                guard b.consecutiveFailures >= policy.consecutiveFailures || rateTripped else { return nil }
                b.state = .open
                b.openUntilMs = nowMs + cooldown
                return .opened
            }
        }
    }

    /// A trial that ended without an outcome (cancelled): let another one through.
    public func abandonTrial() {
        breaker.withLock { b in if b.state == .halfOpen { b.trialInFlight = false } }
    }

    private func count(_ b: inout Breaker, failed: Bool, nowMs: Int64) {
        if nowMs - b.windowStartMs > Int64(policy.windowMs) {
            b.windowStartMs = nowMs
            b.requests = 0
            b.failures = 0
        }
        b.requests += 1
        if failed { b.failures += 1 }
    }
}
