/// When a deployment's circuit breaker opens, and for how long (docs/resilience.md).
public struct BreakerPolicy: Sendable, Equatable {
    /// Consecutive failures that open the breaker.
    public var consecutiveFailures = 5
    /// Or: this share of failures among the requests of the last `windowMs`…
    public var errorRate = 0.5
    public var windowMs = 30_000
    /// …once the window holds at least this many requests.
    public var minRequests = 10
    /// How long it stays open before one trial request (at least the provider's Retry-After).
    public var cooldownMs = 30_000

    public init() {}

    /// A breaker that never opens: the built-in catalog has one deployment per provider and
    /// nothing to route around, so a cooldown would only stretch a provider's outage.
    public static let never: BreakerPolicy = {
        var p = BreakerPolicy()
        p.consecutiveFailures = Int.max
        p.errorRate = 2
        return p
    }()
}
