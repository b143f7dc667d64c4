import Providers
import Storage
import Testing
@testable import ChatAPI

/// Readers of one shared answer each go at their own pace: pausing one (its client is slow)
/// stops only that reader, never the answer or the other readers.
@Suite struct SharedAnswerTests {
    final class Reader: ResilientUpstreamDelegate {
        var text = ""
        var started = false
        var ended: ProviderError?? = nil
        var pauseAfter: Int?
        var cursor: AnswerCursor?
        private var pieces = 0

        func upstreamDidStart() { started = true }
        func upstreamDidReceive(_ event: StreamEvent) {
            guard case .text(let t) = event else { return }
            text += t
            pieces += 1
            if pieces == pauseAfter { cursor?.pause() }
        }
        func upstreamDidEnd(_ error: ProviderError?) { ended = .some(error) }
        func upstreamDidCommit(_ route: RoutedModel) {}
        func upstreamWillRestart(after error: ProviderError, on route: RoutedModel) {}
    }

    private func attach(_ answer: SharedAnswer, pays: Bool, pauseAfter: Int? = nil) -> Reader {
        let r = Reader()
        r.pauseAfter = pauseAfter
        let c = AnswerCursor(answer: answer, pays: pays, delegate: r)
        r.cursor = c
        c.start()
        return r
    }

    @Test func aPausedReaderLagsWhileTheOthersAndTheAnswerGoOn() {
        let answer = SharedAnswer(key: CacheKey(ChatRequest(model: "m", messages: [ChatMessage(role: .user, content: "hi")]), model: "m"))
        let fast = attach(answer, pays: true)
        let slow = attach(answer, pays: false, pauseAfter: 2)
        answer.upstreamDidStart()
        for p in ["a", "b", "c", "d", "e"] { answer.upstreamDidReceive(.text(p)) }
        #expect(fast.text == "abcde" && slow.text == "ab")
        answer.upstreamDidReceive(.finish(FinishReason(.stop, raw: "stop")))
        answer.upstreamDidEnd(nil)
        #expect(fast.ended != nil && slow.ended == nil, "the slow reader ends only once it has read everything")
        #expect(answer.readers == 1)
        slow.cursor?.resume()
        #expect(slow.text == "abcde" && slow.ended != nil)
        #expect(answer.readers == 0)
    }

    @Test func theLastReaderLeavingStopsTheAnswer() {
        let answer = SharedAnswer(key: CacheKey(ChatRequest(model: "m", messages: []), model: "m"))
        var endedWith: ProviderError?
        answer.onEnd = { endedWith = $0.error }
        let a = attach(answer, pays: true), b = attach(answer, pays: false)
        answer.upstreamDidReceive(.text("x"))
        a.cursor?.cancel()
        #expect(!answer.ended)
        b.cursor?.cancel()
        #expect(answer.ended && endedWith != nil)
    }

    @Test func keysDependOnWhatChangesTheAnswerOnly() {
        let base = ChatRequest(model: "up", system: "s", messages: [ChatMessage(role: .user, content: "hi")], maxTokens: 10, temperature: 0)
        var other = base
        other.model = "another-upstream-id"
        #expect(CacheKey(base, model: "m") == CacheKey(other, model: "m"), "the public name counts, not the upstream id")
        var t = base
        t.temperature = 0.5
        #expect(CacheKey(base, model: "m") != CacheKey(t, model: "m"))
        var s = base
        s.system = "other"
        #expect(CacheKey(base, model: "m") != CacheKey(s, model: "m"))
        #expect(CacheKey(base, model: "m") != CacheKey(base, model: "m2"))
        var stop = base
        stop.stop = ["x"]
        #expect(CacheKey(base, model: "m") != CacheKey(stop, model: "m"))
    }

    @Test func recentAnswersExpireAndStayWithinTheirBytes() {
        var recent = RecentAnswers(maxBytes: 400)
        func key(_ i: Int) -> CacheKey { CacheKey(ChatRequest(model: "m", messages: [ChatMessage(role: .user, content: "\(i)")]), model: "m") }
        let answer = CachedAnswer(pieces: [String(repeating: "x", count: 100)], finishReason: "stop", usage: nil)
        recent.put(key(1), answer, lifetimeMillis: 1_000, now: 0)
        #expect(recent.get(key(1), now: 999_000_000) == answer)
        #expect(recent.get(key(1), now: 1_000_000_000) == nil, "gone at its expiry")
        for i in 0..<10 { recent.put(key(i), answer, lifetimeMillis: 60_000, now: 0) }
        #expect(recent.count == 4, "400 bytes hold four 100-byte answers")
        #expect(recent.get(key(9), now: 1) != nil && recent.get(key(0), now: 1) == nil, "the oldest went first")
        let big = CachedAnswer(pieces: [String(repeating: "y", count: 200)], finishReason: nil, usage: nil)
        recent.put(key(99), big, lifetimeMillis: 60_000, now: 0)
        #expect(recent.get(key(99), now: 1) == nil, "an answer over a quarter of the bound is not kept")
    }

    @Test func cacheControlDirectives() {
        #expect(CachePolicy.decide(ask: .init(), modelTTL: nil, temperature: 0) == nil)
        #expect(CachePolicy.decide(ask: .init(), modelTTL: 60, temperature: 0) == CachePolicy(lookup: true, ttlSeconds: 60))
        #expect(CachePolicy.decide(ask: .init(), modelTTL: 60, temperature: nil) == nil)
        #expect(CachePolicy.decide(ask: .init(), modelTTL: 60, temperature: 0.2) == nil)
        #expect(CachePolicy.decide(ask: .init(ttlSeconds: 5), modelTTL: nil, temperature: 1) == CachePolicy(lookup: true, ttlSeconds: 5))
        #expect(CachePolicy.decide(ask: .init(noStore: true), modelTTL: 60, temperature: 0) == nil)
        #expect(CachePolicy.decide(ask: .init(noCache: true), modelTTL: 60, temperature: 0) == CachePolicy(lookup: false, ttlSeconds: 60))
    }
}
