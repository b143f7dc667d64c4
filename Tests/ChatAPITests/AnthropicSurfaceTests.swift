import Foundation
import Testing

extension ChatAPIEndToEnd {
    /// POST /v1/messages and /v1/messages/count_tokens against the real server: keys in either
    /// header, Anthropic's error shape, its event sequence, and refusals that leave nothing behind.
    @Suite(.serialized) struct AnthropicSurface {
        static func post(_ relay: Relay, path: String = "/v1/messages", _ body: [String: Any],
                         headers: [String: String] = ["x-api-key": "k1"]) throws -> HTTPResult {
            var h = headers
            h["Content-Type"] = "application/json"
            h["anthropic-version"] = h["anthropic-version"] ?? "2023-06-01"
            return try HTTPClient.request(port: relay.port, method: "POST", path: path, headers: h, body: jsonBytes(body))
        }

        static func anthropicError(_ r: HTTPResult) -> (type: String?, message: String?) {
            let error = r.json?["error"] as? [String: Any]
            return (error?["type"] as? String, error?["message"] as? String)
        }

        @Test func refusalsAreAnthropicShapedAndStoreNothing() throws {
            let mock = try Shared.mock.get()
            let relay = try Shared.relay.get()
            let before = try relay.get("/api/v1/conversations?limit=100").text
            let upstreamBefore = mock.requestCount
            let user: [String: Any] = ["role": "user", "content": "hi"]
            let cases: [([String: Any], String)] = [
                (["model": "gpt-5.4-mini", "messages": [user]], "max_tokens"),
                (["model": "gpt-5.4-mini", "max_tokens": 5, "messages": [] as [Any]], "messages"),
                (["model": "gpt-5.4-mini", "max_tokens": 5, "messages": [["role": "assistant", "content": "x"], user]], "messages.0.role"),
                (["model": "gpt-5.4-mini", "max_tokens": 5, "messages": [["role": "robot", "content": "x"]]], "messages.0.role"),
                (["model": "gpt-5.4-mini", "max_tokens": 5,
                  "messages": [["role": "user", "content": [["type": "image", "source": ["type": "url", "url": "https://x/y.png"]]]]]],
                 "messages.0.content.0.type"),
                (["model": "gpt-5.4-mini", "max_tokens": 5, "messages": [user], "tools": [["name": "t", "input_schema": [:] as [String: Any]]]],
                 "tools"),
                (["model": "no-such-model", "max_tokens": 5, "messages": [user]], "model"),
                (["model": "gpt-5.4-mini", "max_tokens": 5, "messages": [user], "fallbacks": ["no-such-model"]], "fallbacks[0]"),
            ]
            for (body, field) in cases {
                let r = try Self.post(relay, body, headers: ["x-api-key": "k1", "X-Conversation-Id": "new"])
                #expect(r.status == 400, "\(body): \(r.status) \(r.text)")
                #expect(r.json?["type"] as? String == "error", "\(r.text)")
                let e = Self.anthropicError(r)
                #expect(e.type == "invalid_request_error", "\(r.text)")
                #expect(e.message?.hasPrefix(field + ": ") == true || e.message?.hasPrefix(field + " ") == true, "\(field): \(r.text)")
                #expect(r.header("X-Conversation-Id") == nil)
            }
            #expect(try relay.get("/api/v1/conversations?limit=100").text == before, "a refused request stored something")
            #expect(mock.requestCount == upstreamBefore, "a refused request reached the upstream")
        }

        @Test func keysInEitherHeaderAndAuthenticationErrors() throws {
            let relay = try Shared.relay.get()
            let body: [String: Any] = ["model": "mock-echo", "max_tokens": 16, "messages": [["role": "user", "content": "hello there"]]]
            #expect(try Self.post(relay, body, headers: ["x-api-key": "k1"]).status == 200)
            #expect(try Self.post(relay, body, headers: ["Authorization": "Bearer k2"]).status == 200)
            for headers in [["x-api-key": "nope"], ["Authorization": "Bearer nope", "x-api-key": "k1"], [:]] {
                let r = try Self.post(relay, body, headers: headers)
                #expect(r.status == 401, "\(headers)")
                #expect(Self.anthropicError(r).type == "authentication_error", "\(r.text)")
            }
            let version = try Self.post(relay, body, headers: ["x-api-key": "k1", "anthropic-version": "2020-01-01"])
            #expect(version.status == 400)
            #expect(Self.anthropicError(version).message?.hasPrefix("anthropic-version: ") == true, "\(version.text)")
            for v in ["2023-06-01", "2026-10-21"] {
                #expect(try Self.post(relay, body, headers: ["x-api-key": "k1", "anthropic-version": v]).status == 200, "\(v)")
            }
            let ct = try HTTPClient.request(port: relay.port, method: "POST", path: "/v1/messages",
                                            headers: ["x-api-key": "k1", "Content-Type": "text/plain"], body: jsonBytes(body))
            #expect(ct.status == 415)
            #expect(Self.anthropicError(ct).type == "invalid_request_error")
        }

        @Test func streamedTurnFollowsAnthropicsEventSequence() throws {
            let relay = try Shared.relay.get()
            let body: [String: Any] = ["model": "mock-echo", "max_tokens": 64, "stream": true,
                                       "messages": [["role": "user", "content": "one two three"]]]
            let s = try SSEClient(port: relay.port, path: "/v1/messages",
                                  headers: ["x-api-key": "k1", "Content-Type": "application/json", "anthropic-version": "2023-06-01"],
                                  body: Data(jsonBytes(body)), timeout: 30)
            let r = try s.readToEnd()
            #expect(r.status == 200)
            #expect(r.header("request-id") == r.header("X-Request-Id"))
            let names = r.events.map(\.event)
            #expect(names == ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
                              "content_block_delta", "content_block_stop", "message_delta", "message_stop"], "\(names)")
            let text = r.events.filter { $0.event == "content_block_delta" }
                .compactMap { ($0.json?["delta"] as? [String: Any])?["text"] as? String }.joined()
            #expect(text == "one two three")
            let delta = try #require(r.first("message_delta")?.json)
            #expect((delta["delta"] as? [String: Any])?["stop_reason"] as? String == "end_turn")
            #expect((delta["usage"] as? [String: Any])?["output_tokens"] as? Int == 3)
            #expect((delta["usage"] as? [String: Any])?["input_tokens"] as? Int == 3)
            let start = try #require(r.first("message_start")?.json?["message"] as? [String: Any])
            #expect((start["id"] as? String)?.hasPrefix("msg_") == true)
            #expect(start["model"] as? String == "mock-echo")
        }

        @Test func maxTokensTruncationAndCountTokens() throws {
            let relay = try Shared.relay.get()
            let messages = [["role": "user", "content": "alpha beta gamma delta"]]
            let r = try Self.post(relay, ["model": "mock-echo", "max_tokens": 2, "system": "be brief", "messages": messages])
            #expect(r.status == 200)
            #expect(r.json?["stop_reason"] as? String == "max_tokens")
            #expect((r.json?["content"] as? [[String: Any]])?.first?["text"] as? String == "alpha beta ")
            let usage = r.json?["usage"] as? [String: Any]
            #expect(usage?["output_tokens"] as? Int == 2)
            let count = try Self.post(relay, path: "/v1/messages/count_tokens", ["model": "mock-echo", "system": "be brief", "messages": messages])
            #expect(count.status == 200)
            #expect(count.json?.keys.sorted() == ["input_tokens"])
            #expect(count.json?["input_tokens"] as? Int == usage?["input_tokens"] as? Int, "the mock's estimate is its own count")
            let estimate = try Self.post(relay, path: "/v1/messages/count_tokens", ["model": "gpt-5.4-mini", "messages": messages])
            #expect((estimate.json?["input_tokens"] as? Int ?? 0) > 0)
            let unknown = try Self.post(relay, path: "/v1/messages/count_tokens", ["model": "no-such-model", "messages": messages])
            #expect(unknown.status == 400 && Self.anthropicError(unknown).type == "invalid_request_error")
        }
    }
}
