import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ChatAPIEndToEnd {
    /// Retries, failover, fallbacks, breakers, hedging and mid-stream failures against the shipped
    /// mock, whose per-deployment faults are set at runtime (`X-Mock-Tag` headers in the catalog)
    /// and whose request log shows what each deployment received.
    @Suite(.serialized) final class Resilience {
        let mock: MockUpstream
        let relay: Relay
        let file: CatalogFileFixture

        static func yaml(_ port: Int) -> String {
            let b = "http://127.0.0.1:\(port)"
            func d(_ id: String, _ kind: String = "openai", extra: String = "") -> String {
                let base: String
                var more = ""
                switch kind {
                case "anthropic": base = b; more = ", model: claude-sonnet-4-6"
                case "gemini": base = "\(b)/v1beta"; more = ", model: gemini-2.5-flash"
                case "azure-openai": base = "\(b)/openai/deployments/x"; more = ", api_version: 2024-10-21"
                case "openai-compatible": base = "\(b)/compat/v1"; more = ", model: llama"
                default: base = "\(b)/v1"; more = ", model: gpt-4.1"
                }
                return "{id: \(id), provider: \(kind), base_url: \"\(base)\", api_key_env: T_KEY\(more), headers: {X-Mock-Tag: \(id)}\(extra)}"
            }
            let fast = "retry: {backoff_base_ms: 20, backoff_max_ms: 40}"
            // Each fault below is followed by a success: a 50% error rate must not open these breakers.
            let lenient = ", breaker: {error_rate: 1}"
            return """
            models:
              - {name: single-openai, \(fast), deployments: [\(d("s-openai", extra: lenient))]}
              - {name: single-anthropic, \(fast), deployments: [\(d("s-anthropic", "anthropic", extra: lenient))]}
              - {name: single-gemini, \(fast), deployments: [\(d("s-gemini", "gemini", extra: lenient))]}
              - {name: single-azure, \(fast), deployments: [\(d("s-azure", "azure-openai", extra: lenient))]}
              - {name: single-compat, \(fast), deployments: [\(d("s-compat", "openai-compatible", extra: lenient))]}
              - name: pair
                routing: ordered
                \(fast)
                deployments:
                  - \(d("pair-a", extra: ", breaker: {consecutive_failures: 3, cooldown_s: 1.5}"))
                  - \(d("pair-b"))
              - {name: chain-a, fallbacks: [chain-b, chain-c], retry: {retries_per_deployment: 0}, deployments: [\(d("ca"))]}
              - {name: chain-b, deployments: [\(d("cb"))]}
              - {name: chain-c, deployments: [\(d("cc"))]}
              - {name: restarting, routing: ordered, on_midstream_failure: restart, deployments: [\(d("r1")), \(d("r2"))]}
              - {name: plain, routing: ordered, deployments: [\(d("m1")), \(d("m2"))]}
              - {name: hedged, routing: ordered, hedge_after_ms: 200, deployments: [\(d("h-a")), \(d("h-b"))]}
              - {name: patient, retry: {max_retry_after_s: 10}, deployments: [\(d("w1"))]}
            """
        }

        init() throws {
            mock = try MockUpstream()
            file = try CatalogFileFixture(Resilience.yaml(mock.port))
            relay = try Relay(mock: nil, ["T_KEY": "k", "CHAT_MODELS_FILE": file.path])
        }

        deinit { try? mock.clearFaults() }

        static let retryable: [(Int, String)] = [(408, "s-openai"), (429, "s-openai"), (500, "s-openai"), (502, "s-openai"),
                                                 (503, "s-openai"), (504, "s-openai"), (529, "s-anthropic"), (500, "s-anthropic"),
                                                 (429, "s-gemini"), (503, "s-gemini"), (500, "s-azure"), (429, "s-azure"),
                                                 (502, "s-compat"), (503, "s-compat")]

        @Test func everyRetryableFaultIsRetriedThenAnswered() throws {
            for (status, tag) in Resilience.retryable {
                try mock.setFault(tag, ["status": status, "times": 1])
                let before = mock.calls(tag)
                let model = "single-" + tag.dropFirst(2)
                let r = try relay.chat(["message": "[mock tokens=2]", "model": model])
                #expect(r.status == 200 && r.text == "Hello from", "\(status) on \(tag): \(r.status) \(r.events.map(\.event)) \(String(decoding: r.body, as: UTF8.self)) \(relay.child.log.suffix(1500))")
                #expect(mock.calls(tag) - before == 2, "\(status) on \(tag): the mock saw \(mock.calls(tag) - before) calls")
                let done = r.first("done")?.json
                #expect(attemptList(done) == ["\(tag):failed:\(status)", "\(tag):ok"], "\(attemptList(done))")
            }
            // A reset connection too, on every kind.
            for tag in ["s-openai", "s-anthropic", "s-gemini", "s-azure", "s-compat"] {
                try mock.setFault(tag, ["kind": "reset", "times": 1])
                let r = try relay.openAIStream("single-" + tag.dropFirst(2), "[mock tokens=2]")
                #expect(r.status == 200 && chunkText(r.chunks) == "Hello from", "reset on \(tag): \(r.body)")
            }
        }

        @Test func retryAfterSetsTheDelay() throws {
            for (header, value, atLeast) in [("retry_after", "1", 1_000), ("retry_after_ms", "400", 400)] {
                try mock.setFault("w1", ["status": 429, "times": 1, header: value])
                let before = try mock.requests(tag: "w1").count
                let r = try relay.chat(["message": "[mock tokens=1]", "model": "patient"])
                #expect(r.status == 200)
                let calls = Array(try mock.requests(tag: "w1").dropFirst(before))
                #expect(calls.count == 2)
                if calls.count == 2, let t0 = calls[0]["at_ms"] as? Int, let t1 = calls[1]["at_ms"] as? Int {
                    #expect(t1 - t0 >= atLeast && t1 - t0 < atLeast + 600, "\(header)=\(value): retried after \(t1 - t0) ms")
                }
            }
            // An HTTP date two seconds ahead.
            let when = Date().addingTimeInterval(2)
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "GMT")
            f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
            try mock.setFault("w1", ["status": 503, "times": 1, "retry_after": f.string(from: when)])
            let before = try mock.requests(tag: "w1").count
            #expect(try relay.chat(["message": "[mock tokens=1]", "model": "patient"]).status == 200)
            let calls = Array(try mock.requests(tag: "w1").dropFirst(before))
            if calls.count == 2, let t0 = calls[0]["at_ms"] as? Int, let t1 = calls[1]["at_ms"] as? Int {
                #expect(t1 - t0 >= 900 && t1 - t0 < 2_700, "HTTP date: retried after \(t1 - t0) ms")
            } else {
                Issue.record("expected 2 calls, saw \(calls.count)")
            }
        }

        @Test(arguments: [400, 401, 403, 404])
        func nonRetryableFaultsAreOneCall(_ status: Int) throws {
            try mock.setFault("s-openai", ["status": status])
            let before = mock.calls("s-openai")
            let r = try relay.chat(["message": "[mock tokens=1]", "model": "single-openai"])
            #expect(r.status >= 400, "\(status): \(r.status)")
            #expect(mock.calls("s-openai") - before == 1)
            let v1 = try relay.openAIStream("single-openai", "[mock tokens=1]")
            #expect(v1.status >= 400)
            #expect(mock.calls("s-openai") - before == 2)
            try mock.clearFaults()
        }

        @Test func aDownDeploymentIsSkippedOnceItsBreakerOpensThenTriedAgain() throws {
            try mock.clearFaults()
            try mock.setFault("pair-a", ["status": 500])
            let aBefore = mock.calls("pair-a"), bBefore = mock.calls("pair-b")
            for i in 0..<10 {
                let r = try relay.chat(["message": "[mock tokens=1]", "model": "pair"])
                #expect(r.status == 200, "turn \(i)")
                #expect(r.first("done")?.json?.str("deployment") == "pair-b", "turn \(i)")
            }
            // Three consecutive failures opened A's breaker: no call reached it after that.
            #expect(mock.calls("pair-a") - aBefore == 3)
            #expect(mock.calls("pair-b") - bBefore == 10)
            let metrics = try relay.metricsText()
            #expect(metricValue(metrics, "chatrelay_breaker_state{deployment=\"pair-a\"}") == 1)
            #expect(relay.child.log.components(separatedBy: "circuit breaker opened").count == 2, "logged once")

            // A recovers; after the cooldown one trial goes to it, and it is back in use.
            try mock.clearFaults()
            usleep(1_600_000)
            let trial = try relay.chat(["message": "[mock tokens=1]", "model": "pair"])
            #expect(trial.first("done")?.json?.str("deployment") == "pair-a")
            #expect(mock.calls("pair-a") - aBefore == 4)
            #expect(metricValue(try relay.metricsText(), "chatrelay_breaker_state{deployment=\"pair-a\"}") == 0)
            #expect(try relay.chat(["message": "[mock tokens=1]", "model": "pair"]).first("done")?.json?.str("deployment") == "pair-a")
        }

        @Test func aFallbackChainEndsAtTheFirstModelThatAnswers() throws {
            try mock.clearFaults()
            try mock.setFault("ca", ["status": 500])
            try mock.setFault("cb", ["status": 503])
            let r = try relay.chat(["message": "[mock tokens=2]", "model": "chain-a"])
            #expect(r.status == 200 && r.text == "Hello from")
            let done = r.first("done")?.json
            #expect(done?.str("model") == "chain-c" && done?.str("deployment") == "cc")
            #expect(attemptList(done) == ["ca:failed:500", "cb:failed:503", "cc:ok"], "\(attemptList(done))")
            let stored = try relay.finalAnswer(try #require(r.conversationID))
            #expect(stored.str("model") == "chain-c" && stored.str("deployment") == "cc")
            #expect((stored["attempts"] as? [[String: Any]])?.count == 3)
            // A request's own list replaces the catalog's: straight from ca to cc.
            let own = try relay.chat(["message": "[mock tokens=1]", "model": "chain-a", "fallbacks": ["chain-c"]])
            #expect(attemptList(own.first("done")?.json) == ["ca:failed:500", "cc:ok"])
            let v1 = try relay.openAIStream("chain-a", "[mock tokens=1]")
            #expect(chunkText(v1.chunks) == "Hello" && v1.done)
            #expect(try relay.chat(["message": "x", "model": "chain-a", "fallbacks": ["nope"]]).status == 400)
            try mock.clearFaults()
        }

        @Test func aMidstreamFailureIsNeverSpliced() throws {
            try mock.clearFaults()
            // Without restart: the stream ends with the error, on both APIs.
            try mock.setFault("m1", ["kind": "midstream", "after": 2])
            let plain = try relay.chat(["message": "[mock tokens=6]", "model": "plain"])
            #expect(plain.text == "Hello from" && plain.first("error") != nil && plain.first("done") == nil)
            let v1 = try relay.openAIStream("plain", "[mock tokens=6]")
            #expect(chunkText(v1.chunks) == "Hello from")
            #expect(v1.chunks.contains { $0["error"] != nil } || v1.body.contains("error"), "\(v1.chunks)")
            #expect(mock.calls("m2") == 0, "nothing was spliced from m2")

            // With restart: a `restart` event, then the new answer from its first token.
            try mock.setFault("r1", ["kind": "midstream", "after": 2, "times": 1])
            let r = try relay.chat(["message": "[mock tokens=4]", "model": "restarting"])
            let names = r.events.map(\.event)
            #expect(names.filter { $0 == "restart" }.count == 1, "\(names)")
            let restart = r.first("restart")?.json
            #expect(restart?.str("deployment") == "r2" && restart?.str("model") == "restarting")
            let afterRestart = r.events.drop { $0.event != "restart" }.filter { $0.event == "token" }.compactMap { $0.json?["text"] as? String }.joined()
            #expect(afterRestart == "Hello from the mock")
            #expect(r.first("done")?.json?.str("deployment") == "r2")
            let stored = try relay.finalAnswer(try #require(r.conversationID))
            #expect(stored.str("content") == "Hello from the mock", "only the final answer is kept")
            // /v1 never restarts: the error ends the stream.
            try mock.setFault("r1", ["kind": "midstream", "after": 2, "times": 1])
            let v1r = try relay.openAIStream("restarting", "[mock tokens=4]")
            #expect(chunkText(v1r.chunks) == "Hello from")
            try mock.clearFaults()
        }

        @Test func aHedgeWinsAgainstASlowFirstTokenAndTheLoserIsDropped() throws {
            try mock.clearFaults()
            try mock.setFault("h-a", ["kind": "slow_first", "first_delay_ms": 3_000])
            let started = Date()
            let r = try relay.chat(["message": "[mock tokens=3]", "model": "hedged"])
            #expect(Date().timeIntervalSince(started) < 2)
            #expect(r.text == "Hello from the")
            #expect(r.events.filter { $0.event == "start" }.count == 1 && r.events.filter { $0.event == "done" }.count == 1)
            let done = r.first("done")?.json
            #expect(done?.str("deployment") == "h-b")
            #expect(attemptList(done).contains("h-a:cancelled") && attemptList(done).contains("h-b:ok"), "\(attemptList(done))")
            #expect(waitUntil(seconds: 3) { (try? self.mock.requests(tag: "h-a").last?["outcome"] as? String) == "disconnected" },
                    "the mock did not see the slow attempt dropped")
            #expect(metricValue(try relay.metricsText(), "chatrelay_hedges_total{result=\"won\"}") == 1)
            try mock.clearFaults()
        }

        @Test func aClientThatLeavesDuringBackoffEndsTheTurnsUpstreamWork() throws {
            try mock.clearFaults()
            try mock.setFault("w1", ["status": 503, "retry_after": "3"])
            let before = mock.calls("w1")
            // A raw socket: the response head is held while the retry waits, so do not wait for it.
            let s = try TestSocket(port: relay.port)
            try s.send(requestBytes(method: "POST", path: "/api/v1/chat",
                                    headers: ["Authorization": "Bearer k1", "Content-Type": "application/json"],
                                    body: jsonBytes(["message": "[mock tokens=1]", "model": "patient"])))
            #expect(waitUntil(seconds: 2) { self.mock.calls("w1") - before == 1 })
            usleep(300_000)
            s.close()
            usleep(3_500_000)
            #expect(mock.calls("w1") - before == 1, "a retry went out for a client that had left")
            try mock.clearFaults()
        }
    }
}
