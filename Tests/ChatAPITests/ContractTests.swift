import Foundation
import Testing

extension ChatAPIEndToEnd {
    @Suite(.serialized) struct SSEContract {
        @Test func headersAndEventOrder() throws {
            let relay = try Shared.relay.get()
            let r = try relay.chat(["message": "[mock tokens=5]", "model": "gpt-4.1"])
            #expect(r.status == 200)
            #expect(r.header("Content-Type")?.hasPrefix("text/event-stream") == true)
            #expect(r.header("Cache-Control") == "no-cache")
            #expect(r.header("X-Accel-Buffering") == "no")
            let names = r.events.map(\.event)
            #expect(names == ["start"] + Array(repeating: "token", count: 5) + ["done"], "events: \(names)")
            // Every id is <message id>:<characters of the answer sent so far> (what a resume needs).
            let messageID = r.first("start")?.json?.str("message_id") ?? "?"
            let positions = r.events.compactMap { e -> Int? in
                guard let id = e.id, id.hasPrefix(messageID + ":") else { return nil }
                return Int(id.dropFirst(messageID.count + 1))
            }
            #expect(positions.count == r.events.count, "every event has an id naming the answer: \(r.events.map(\.id))")
            #expect(zip(positions, positions.dropFirst()).allSatisfy { $0 <= $1 }, "positions never go back: \(positions)")
            #expect(positions.first == 0 && positions.last == r.text.unicodeScalars.count)
            let start = r.first("start")?.json
            #expect(start?.str("model") == "gpt-4.1")
            #expect(start?.str("provider") == "openai")
            #expect(start?.str("message_id") != nil)
            #expect(r.text == mockText(tokens: 5))
            let done = r.first("done")?.json
            #expect(done?.str("finish_reason") == "stop")
            #expect(done?.obj("usage")?.int("completion_tokens") == 5)
            #expect(done?.int("latency_ms") != nil)
            #expect(done?.int("ttft_ms") != nil)
        }

        /// CHAT_SSE_PING_S=1 and a first token after 2.5 s: pings arrive before it.
        @Test func pingsWhileWaitingForFirstToken() throws {
            let mock = try Shared.mock.get()
            let relay = try Relay(mock: mock, ["CHAT_SSE_PING_S": "1"])
            let r = try relay.chat(["message": "[mock tokens=3 first=2500]", "model": "gpt-4.1"])
            #expect(r.status == 200)
            let firstToken = r.items.firstIndex { $0.event?.event == "token" } ?? r.items.count
            let pings = r.items[..<firstToken].filter { if case .comment(let c) = $0 { return c == "ping" }; return false }
            #expect(pings.count >= 1, "no `: ping` before the first token: \(r.items)")
            #expect(r.first("done") != nil)
        }
    }

    @Suite(.serialized) struct Auth {
        @Test func missingAndWrongKey() throws {
            let relay = try Shared.relay.get()
            let body = jsonBytes(["message": "hi", "model": "mock-echo"])
            let none = try HTTPClient.request(port: relay.port, method: "POST", path: "/api/v1/chat",
                                              headers: ["Content-Type": "application/json"], body: body)
            #expect(none.status == 401)
            #expect(none.errorType == "unauthorized")
            let wrong = try HTTPClient.request(port: relay.port, method: "POST", path: "/api/v1/chat",
                                               headers: ["Content-Type": "application/json", "Authorization": "Bearer nope"], body: body)
            #expect(wrong.status == 401)
            #expect(wrong.errorType == "unauthorized")
            #expect(try relay.get("/api/v1/conversations", key: nil).status == 401)
            #expect(try relay.get("/api/v1/conversations", key: "k3").status == 401)
        }

        @Test func anotherKeysConversationIsNotFound() throws {
            let mock = try Shared.mock.get()
            let relay = try Shared.relay.get()
            let secret = "the secret word is swordfish"
            let r = try relay.chat(["message": secret, "model": "mock-echo"], key: "k1")
            let id = try #require(r.conversationID)
            let get = try relay.get("/api/v1/conversations/\(id)", key: "k2")
            #expect(get.status == 404)
            #expect(!get.text.contains("swordfish"))
            let del = try HTTPClient.request(port: relay.port, method: "DELETE", path: "/api/v1/conversations/\(id)",
                                             headers: ["Authorization": "Bearer k2"])
            #expect(del.status == 404)
            let before = mock.requestCount
            let post = try relay.chat(["message": "echo:what was the secret?", "model": "gpt-4.1", "conversation_id": id], key: "k2")
            #expect(post.status == 404)
            #expect(post.errorType == "not_found")
            #expect(!String(decoding: post.body, as: UTF8.self).contains("swordfish"))
            #expect(mock.requestCount == before, "the upstream was called for another key's conversation")
            // The owner still sees it intact; the list of k2 does not show it.
            let msgs = try relay.messages(id, key: "k1")
            #expect(msgs.count == 2)
            #expect(msgs.first?.str("content") == secret)
            let list = try relay.get("/api/v1/conversations?limit=100", key: "k2")
            #expect(!list.text.contains(id))
            // And the owner may delete it.
            let ownDel = try HTTPClient.request(port: relay.port, method: "DELETE", path: "/api/v1/conversations/\(id)",
                                                headers: ["Authorization": "Bearer k1"])
            #expect(ownDel.status == 204)
            #expect(ownDel.header("Content-Length") == nil, "a 204 must not carry Content-Length")
            #expect(try relay.get("/api/v1/conversations/\(id)", key: "k1").status == 404)
        }
    }

    @Suite(.serialized) struct Validation {
        func post(_ relay: Relay, _ body: [UInt8], contentType: String = "application/json") throws -> HTTPResult {
            try HTTPClient.request(port: relay.port, method: "POST", path: "/api/v1/chat",
                                   headers: ["Content-Type": contentType, "Authorization": "Bearer k1"], body: body)
        }

        @Test func badRequestsName400sParam() throws {
            let relay = try Shared.relay.get()
            let badJSON = try post(relay, Array(#"{"message": "hi", "#.utf8))
            #expect(badJSON.status == 400)
            #expect(badJSON.errorType == "invalid_request")
            #expect(badJSON.errorMessage?.isEmpty == false)

            let cases: [([String: Any], String)] = [
                (["model": "mock-echo"], "message"),
                (["message": "", "model": "mock-echo"], "message"),
                (["message": "hi", "model": "foo-1"], "model"),
                (["message": "hi", "model": "mock-echo", "conversation_id": "not-a-uuid"], "conversation_id"),
                (["message": "hi", "model": "mock-echo", "temperature": 3.5], "temperature"),
                (["message": "hi", "model": "mock-echo", "temperature": -0.1], "temperature"),
                (["message": 42, "model": "mock-echo"], "message"),
                (["message": "hi", "model": 7], "model"),
                (["message": "hi", "model": "mock-echo", "max_tokens": 0], "max_tokens"),
                (["message": "hi", "model": "mock-echo", "temperature": "hot"], "temperature"),
            ]
            for (body, param) in cases {
                let r = try post(relay, jsonBytes(body))
                #expect(r.status == 400, "\(body): \(r.status) \(r.text)")
                #expect(r.errorType == "invalid_request", "\(body): \(r.text)")
                #expect(r.errorParam == param, "\(body): \(r.text)")
            }
        }

        @Test func tooLargeAndWrongContentType() throws {
            let mock = try Shared.mock.get()
            let relay = try Relay(mock: mock, ["CHAT_MAX_BODY_BYTES": "2048"])
            let big = jsonBytes(["message": String(repeating: "x", count: 4096), "model": "mock-echo"])
            let r = try post(relay, big)
            #expect(r.status == 413)
            #expect(r.errorType == "payload_too_large" || r.status == 413)
            let ok = try post(relay, jsonBytes(["message": "small", "model": "mock-echo"]))
            #expect(ok.status == 200)
            let ct = try post(relay, jsonBytes(["message": "hi", "model": "mock-echo"]), contentType: "text/plain")
            #expect(ct.status == 415)
            #expect(ct.errorType == "unsupported_media_type")
        }
    }
}
