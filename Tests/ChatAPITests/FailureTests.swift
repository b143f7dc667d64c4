import Foundation
import Testing

extension ChatAPIEndToEnd {
    @Suite(.serialized) struct Disconnect {
        /// continue: the client leaves after a few tokens; the full answer is still stored.
        @Test func continuePolicyStoresFullAnswer() throws {
            let mock = try Shared.mock.get()
            let relay = try Relay(mock: mock, ["CHAT_ON_DISCONNECT": "continue"])
            let s = try relay.openChat(["message": "[mock tokens=30 delay=20]", "model": "gpt-4.1"])
            #expect(s.status == 200)
            let start = try #require(try s.next(event: "start"))
            let id = try #require(start.json?.str("conversation_id"))
            _ = try s.next(event: "token")
            _ = try s.next(event: "token")
            s.disconnect()
            let answer = try relay.finalAnswer(id, seconds: 10)
            #expect(answer.str("status") == "complete")
            #expect(answer.str("content") == mockText(tokens: 30))
            #expect(answer.str("finish_reason") == "stop")
        }

        /// cancel: the upstream transfer stops at once and the partial text is stored `cancelled`.
        @Test func cancelPolicyStopsUpstream() throws {
            let mock = try Shared.mock.get()
            let relay = try Relay(mock: mock, ["CHAT_ON_DISCONNECT": "cancel"])
            #expect(waitUntil(seconds: 5) { mock.activeStreams == 0 })
            let s = try relay.openChat(["message": "[mock tokens=200 delay=20]", "model": "gpt-4.1"])
            let id = try #require(try s.next(event: "start")?.json?.str("conversation_id"))
            var got = ""
            for _ in 0..<3 { got += (try s.next(event: "token")?.json?.str("text")) ?? "" }
            #expect(mock.activeStreams == 1)
            s.disconnect()
            let t0 = Date()
            #expect(waitUntil(seconds: 2) { mock.activeStreams == 0 }, "the mock still streams after the client left")
            #expect(Date().timeIntervalSince(t0) < 1.5)
            let answer = try relay.finalAnswer(id, seconds: 5)
            #expect(answer.str("status") == "cancelled")
            let content = answer.str("content") ?? ""
            #expect(content.hasPrefix(got), "stored \(content.debugDescription), client saw \(got.debugDescription)")
            #expect(content.count < mockText(tokens: 200).count)
        }

        /// cancel while the upstream has not sent its first token yet.
        @Test func cancelWhileWaitingForFirstToken() throws {
            let mock = try Shared.mock.get()
            // A key of its own, so its conversation list holds just this turn.
            let key = "k-\(uuid())"
            let relay = try Relay(mock: mock, ["CHAT_ON_DISCONNECT": "cancel", "CHAT_API_KEYS": "k1,\(key)"])
            #expect(waitUntil(seconds: 5) { mock.activeStreams == 0 })
            let s = try SSEClientAsync.open(relay, ["message": "[mock tokens=5 first=3000]", "model": "gpt-4.1"], key: key)
            // The turn is stored and the upstream is open, but no token has come yet.
            #expect(waitUntil(seconds: 2) { mock.activeStreams == 1 }, "the upstream stream never opened")
            let list = try relay.get("/api/v1/conversations", key: key).json
            let id = try #require((list?["conversations"] as? [[String: Any]])?.first?.str("id"))
            s.close()
            #expect(waitUntil(seconds: 1.5) { mock.activeStreams == 0 }, "the mock stream outlived the client")
            let answer = try relay.finalAnswer(id, key: key, seconds: 5)
            #expect(answer.str("status") == "cancelled")
            #expect(answer.str("content") == "")
        }
    }

    @Suite(.serialized) struct UpstreamErrors {
        @Test func midstreamError() throws {
            let relay = try Shared.relay.get()
            let r = try relay.chat(["message": "[mock tokens=10 fault=midstream after=2]", "model": "gpt-4.1"])
            #expect(r.status == 200)
            let names = r.events.map(\.event)
            #expect(names == ["start", "token", "token", "error"], "events: \(names)")
            let err = r.first("error")?.json?.obj("error")
            #expect(err?.str("type") != nil)
            #expect(err?.str("message")?.isEmpty == false)
            let id = try #require(r.conversationID)
            let answer = try relay.finalAnswer(id)
            #expect(answer.str("status") == "error")
            #expect(answer.str("content") == mockText(tokens: 2))
            #expect(answer.str("error")?.isEmpty == false, "the error message is not stored: \(answer)")
        }

        /// The upstream drops the connection (reset) or ends without its terminator (truncate)
        /// after two tokens: the client gets an error event and the partial answer is stored `error`.
        @Test(arguments: ["reset", "truncate"]) func brokenStream(fault: String) throws {
            let relay = try Shared.relay.get()
            let r = try relay.chat(["message": "[mock tokens=10 delay=30 fault=\(fault) after=2]", "model": "gpt-4.1"])
            #expect(r.status == 200)
            #expect(r.events.map(\.event) == ["start", "token", "token", "error"], "events: \(r.events.map(\.event))")
            #expect(r.first("error")?.json?.obj("error")?.str("message")?.isEmpty == false)
            let id = try #require(r.conversationID)
            let answer = try relay.finalAnswer(id)
            #expect(answer.str("status") == "error")
            #expect(answer.str("content") == mockText(tokens: 2))
        }

        @Test func rateLimitedBeforeStream() throws {
            let relay = try Shared.relay.get()
            let r = try relay.chat(["message": "[mock fault=429]", "model": "gpt-4.1"])
            #expect(r.status == 429)
            #expect(r.header("Retry-After") != nil)
            #expect(r.errorType == "rate_limited")
        }

        @Test func serverErrorsMapTo502And503() throws {
            let relay = try Shared.relay.get()
            let r500 = try relay.chat(["message": "[mock fault=500]", "model": "gpt-4.1"])
            #expect(r500.status == 502)
            #expect(r500.errorType == "upstream_error")
            let r529 = try relay.chat(["message": "[mock fault=529]", "model": "claude-sonnet-4-6"])
            #expect(r529.status == 503)
            #expect(r529.errorType == "overloaded")
            #expect(r529.header("Retry-After") != nil)
        }

        @Test func connectionRefused() throws {
            let mock = try Shared.mock.get()
            let closed = freePort()
            let relay = try Relay(mock: mock, ["OPENAI_BASE_URL": "http://127.0.0.1:\(closed)/v1"])
            let r = try relay.chat(["message": "hello", "model": "gpt-4.1"])
            #expect(r.status == 502)
            #expect(r.errorType == "upstream_error")
            let message = ((r.json?["error"] as? [String: Any])?["message"] as? String) ?? ""
            #expect(message.contains("connect") && message.contains("127.0.0.1:\(closed)"), "message: \(message)")
        }

        /// Silence between tokens longer than CHAT_UPSTREAM_IDLE_TIMEOUT_S ends the stream with an
        /// upstream_timeout error event, and the partial answer is stored `error`.
        @Test func idleTimeoutBetweenTokens() throws {
            let mock = try Shared.mock.get()
            let relay = try Relay(mock: mock, ["CHAT_UPSTREAM_IDLE_TIMEOUT_S": "1"])
            let r = try relay.chat(["message": "[mock tokens=5 delay=2500]", "model": "gpt-4.1"], timeout: 15)
            #expect(r.status == 200)
            #expect(r.events.map(\.event) == ["start", "token", "error"], "events: \(r.events.map(\.event))")
            #expect(r.first("error")?.json?.obj("error")?.str("type") == "upstream_timeout")
            let answer = try relay.finalAnswer(try #require(r.conversationID))
            #expect(answer.str("status") == "error")
            #expect(answer.str("content") == mockText(tokens: 1))
            #expect(waitUntil(seconds: 3) { mock.activeStreams == 0 })
        }

        @Test func firstTokenTimeout() throws {
            let mock = try Shared.mock.get()
            let relay = try Relay(mock: mock, ["CHAT_UPSTREAM_FIRST_TOKEN_TIMEOUT_S": "1"])
            let t0 = Date()
            let r = try relay.chat(["message": "[mock fault=hang]", "model": "gpt-4.1"], timeout: 15)
            // The provider answered 200 and then went silent: the stream had started (headers go
            // out at once), so the timeout arrives as its error event.
            #expect(r.status == 200, "status \(r.status), events \(r.events.map { "\($0.event) \($0.data)" })")
            #expect(r.events.map(\.event) == ["start", "error"])
            #expect(r.first("error")?.json?.obj("error")?.str("type") == "upstream_timeout")
            #expect(Date().timeIntervalSince(t0) < 5)
            #expect(waitUntil(seconds: 3) { mock.activeStreams == 0 }, "the hanging upstream stream was not closed")
        }
    }
}
