import Testing
@testable import Providers

@Suite struct RetryPolicyTests {
    @Test func fullJitterStaysUnderTheDoublingCeiling() {
        let p = RetryPolicy()
        var rng = SplitMix64(seed: 7)
        for retry in 0..<8 {
            let ceiling = min(p.backoffMaxMs, p.backoffBaseMs << retry)
            let delays = (0..<200).map { _ in p.backoffMs(retry: retry, retryAfterSeconds: nil, random: rng.next()) }
            #expect(delays.allSatisfy { $0 >= 0 && $0 <= ceiling })
            // Full jitter spreads over the whole range, not around the ceiling.
            #expect(delays.min() ?? ceiling < ceiling / 4 && (delays.max() ?? 0) > ceiling * 3 / 4)
        }
    }

    @Test func retryAfterWinsAndIsCapped() {
        var p = RetryPolicy()
        #expect(p.backoffMs(retry: 0, retryAfterSeconds: 1.2, random: 0) == 1_200)
        p.maxRetryAfterMs = 5_000
        #expect(p.backoffMs(retry: 0, retryAfterSeconds: 120, random: 0) == 5_000)
    }

    @Test(arguments: [
        (ProviderError(.rateLimited, "", upstreamStatus: 429), true),
        (ProviderError(.quotaExceeded, "", upstreamStatus: 429), false),
        (ProviderError(.overloaded, "", upstreamStatus: 529), true),
        (ProviderError(.overloaded, "", upstreamStatus: 503), true),
        (ProviderError(.upstreamError, "", upstreamStatus: 500), true),
        (ProviderError(.upstreamError, "", upstreamStatus: 502), true),
        (ProviderError(.upstreamTimeout, "", upstreamStatus: 504), true),
        (ProviderError(.upstreamTimeout, "", upstreamStatus: 408), true),
        (ProviderError(.upstreamTimeout, "first token"), true),
        (ProviderError(.connectFailed, "refused"), true),
        (ProviderError(.upstreamIncomplete, "reset"), true),
        (ProviderError(.invalidRequest, "", upstreamStatus: 400), false),
        (ProviderError(.unauthorized, "", upstreamStatus: 401), false),
        (ProviderError(.unauthorized, "", upstreamStatus: 403), false),
        (ProviderError(.invalidRequest, "", upstreamStatus: 404), false),
        (ProviderError(.upstreamError, "", upstreamStatus: 501), false),
    ])
    func classifiesFailures(_ e: ProviderError, _ retryable: Bool) {
        #expect(RetryClassifier.isRetryable(e) == retryable, "\(e.kind) \(e.upstreamStatus ?? 0)")
    }

    @Test func retryAfterHeadersInEveryForm() {
        #expect(ErrorMapping.retryAfter(headers: [("retry-after-ms", "250"), ("Retry-After", "9")]) == 0.25)
        #expect(ErrorMapping.retryAfter(headers: [("Retry-After", " 2 ")]) == 2)
        // 2026-10-21 07:28:00 GMT is 1792567680; ten seconds before it:
        #expect(ErrorMapping.retryAfter(headers: [("Retry-After", "Wed, 21 Oct 2026 07:28:00 GMT")], nowSeconds: 1_792_567_670) == 10)
        #expect(ErrorMapping.retryAfter(headers: [("Retry-After", "Wed, 21 Oct 2026 07:28:00 GMT")], nowSeconds: 1_792_567_690) == 0)
        #expect(ErrorMapping.retryAfter(headers: [("Retry-After", "soon")]) == nil)
    }
}

@Suite struct BreakerTests {
    func policy(_ n: Int = 3, cooldown: Int = 1_000) -> BreakerPolicy {
        var p = BreakerPolicy()
        p.consecutiveFailures = n
        p.cooldownMs = cooldown
        p.minRequests = 1_000
        return p
    }

    @Test func opensAfterConsecutiveFailuresThenOneTrialThenCloses() {
        let h = DeploymentHealth(policy: policy())
        #expect(h.recordFailure(nowMs: 0, retryAfterMs: nil) == nil)
        #expect(h.recordSuccess(nowMs: 1) == nil)  // a success resets the streak
        #expect(h.recordFailure(nowMs: 2, retryAfterMs: nil) == nil)
        #expect(h.recordFailure(nowMs: 3, retryAfterMs: nil) == nil)
        #expect(h.recordFailure(nowMs: 4, retryAfterMs: nil) == .opened)
        #expect(h.state == .open)
        #expect(h.admit(nowMs: 500).allowed == false)
        #expect(!h.isAdmissible(nowMs: 1_003))
        let trial = h.admit(nowMs: 1_004)
        #expect(trial.allowed && trial.trial && trial.transition == .halfOpen)
        #expect(h.admit(nowMs: 1_005).allowed == false, "only one trial at a time")
        #expect(h.recordSuccess(nowMs: 1_010) == .closed)
        #expect(h.admit(nowMs: 1_011).allowed)
    }

    @Test func aFailedTrialReopensForAtLeastRetryAfter() {
        let h = DeploymentHealth(policy: policy(1, cooldown: 100))
        #expect(h.recordFailure(nowMs: 0, retryAfterMs: 5_000) == .opened)
        #expect(!h.admit(nowMs: 4_999).allowed, "the provider's Retry-After outlasts the cooldown")
        #expect(h.admit(nowMs: 5_000).trial)
        #expect(h.recordFailure(nowMs: 5_001, retryAfterMs: nil) == .opened)
        #expect(!h.admit(nowMs: 5_050).allowed)
        h.abandonTrial()
    }

    @Test func opensOnTheErrorRateOfTheWindow() {
        var p = BreakerPolicy()
        p.consecutiveFailures = 100
        p.minRequests = 10
        p.errorRate = 0.5
        let h = DeploymentHealth(policy: p)
        var opened = false
        for i in 0..<10 {
            if i % 2 == 0 { _ = h.recordSuccess(nowMs: Int64(i)) } else { opened = h.recordFailure(nowMs: Int64(i), retryAfterMs: nil) == .opened || opened }
        }
        #expect(opened, "5 failures of 10 is the 50% rate")
    }

    @Test func streamSlotsStopAtMaxConcurrent() {
        let h = DeploymentHealth()
        #expect(h.acquire(limit: 2) && h.acquire(limit: 2))
        #expect(!h.acquire(limit: 2))
        h.release()
        #expect(h.acquire(limit: 2))
        #expect(h.inFlight == 2)
    }
}

@Suite struct ChooserTests {
    func deployment(_ id: String, weight: Int = 1, max: Int? = nil) -> Deployment {
        Deployment(id: id, kind: .mock, baseURL: "", weight: weight, maxConcurrent: max)
    }

    @Test func skipsOpenBreakersFullDeploymentsAndExcluded() {
        var policy = BreakerPolicy()
        policy.consecutiveFailures = 1
        let open = Deployment(id: "open", kind: .mock, baseURL: "", health: DeploymentHealth(policy: policy))
        _ = open.health.recordFailure(nowMs: 0, retryAfterMs: nil)
        let full = deployment("full", max: 1)
        _ = full.health.acquire(limit: 1)
        let ok = deployment("ok")
        let gone = deployment("gone")
        var n: UInt64 = 0
        for _ in 0..<50 {
            let d = DeploymentChooser.choose([open, full, gone, ok], nowMs: 10, excluded: { $0.id == "gone" }, random: { n += 1; return n })
            #expect(d?.id == "ok")
        }
        #expect(DeploymentChooser.choose([open, full], nowMs: 10, excluded: { _ in false }, random: { 0 }) == nil)
    }

    @Test func ofTwoDrawsTheLessLoadedWins() {
        let busy = deployment("busy"), idle = deployment("idle")
        for _ in 0..<5 { _ = busy.health.acquire(limit: nil) }
        var picks: [String: Int] = [:]
        var rng = SplitMix64(seed: 3)
        for _ in 0..<400 {
            let d = DeploymentChooser.choose([busy, idle], nowMs: 0, excluded: { _ in false }, random: { rng.next() })
            picks[d?.id ?? "-", default: 0] += 1
        }
        // busy only when both draws land on it: about a quarter of the time.
        #expect((picks["busy"] ?? 0) > 50 && (picks["busy"] ?? 0) < 150, "\(picks)")
    }
}

@Suite struct BreakerAlternationTests {
    @Test func alternatingFailuresAndSuccessesDoNotOpenAnAllFailuresRateBreaker() {
        var p = BreakerPolicy()
        p.errorRate = 1
        let h = DeploymentHealth(policy: p)
        var now: Int64 = 1_000_000
        for _ in 0..<8 {
            now += 10
            #expect(h.recordFailure(nowMs: now, retryAfterMs: nil) == nil)
            now += 10
            #expect(h.recordSuccess(nowMs: now) == nil)
        }
    }
}
