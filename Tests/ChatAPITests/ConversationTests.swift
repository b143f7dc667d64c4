import Foundation
import Testing

extension ChatAPIEndToEnd {
    /// Two turns of one conversation with every provider: the second turn carries the first
    /// turn's history upstream in that provider's format, and both answers are stored complete.
    @Suite(.serialized) struct MultiTurn {
        /// Runs two turns with `model`; returns the conversation id and the stored messages.
        func twoTurns(_ model: String, _ relay: Relay, first: String, second: String, system: String? = "Be terse.")
            throws -> (id: String, messages: [[String: Any]], results: [SSEResult]) {
            var body: [String: Any] = ["message": first, "model": model]
            if let system { body["system"] = system }
            let r1 = try relay.chat(body)
            #expect(r1.status == 200, "turn 1: \(r1.status) \(String(decoding: r1.body, as: UTF8.self))")
            #expect(r1.first("done") != nil, "turn 1 has no done event: \(r1.events.map(\.event))")
            let id = try #require(r1.conversationID)
            let r2 = try relay.chat(["message": second, "model": model, "conversation_id": id])
            #expect(r2.status == 200)
            #expect(r2.first("done") != nil, "turn 2 has no done event: \(r2.events.map(\.event))")
            #expect(r2.conversationID == id)
            let messages = try relay.messages(id)
            return (id, messages, [r1, r2])
        }

        func checkStored(_ messages: [[String: Any]], answers: [String], model: String, provider: String) {
            #expect(messages.map { $0.str("role") ?? "?" } == ["user", "assistant", "user", "assistant"])
            let assistants = messages.filter { $0.str("role") == "assistant" }
            #expect(assistants.map { $0.str("content") ?? "" } == answers)
            for a in assistants {
                #expect(a.str("status") == "complete")
                #expect(a.str("model") == model)
                #expect(a.str("provider") == provider)
                #expect(a.str("finish_reason") == "stop")
                let usage = a.obj("usage")
                #expect(usage?.int("prompt_tokens") != nil && usage?.int("completion_tokens") != nil && usage?.int("total_tokens") != nil,
                        "usage not stored: \(String(describing: a["usage"]))")
                #expect(a.int("ttft_ms") != nil, "ttft_ms not stored")
                #expect(a.int("latency_ms") != nil, "latency_ms not stored")
                if let t = a.int("ttft_ms"), let l = a.int("latency_ms") { #expect(t <= l) }
            }
        }

        @Test func openAI() throws {
            let mock = try Shared.mock.get()
            let relay = try Shared.relay.get()
            let (_, messages, results) = try twoTurns("gpt-4.1", relay, first: "echo:hello one two", second: "echo:second turn")
            #expect(results[0].text == "hello one two")
            #expect(results[1].text == "second turn")
            let last = try mock.lastRequest()
            #expect(last.path.hasSuffix("/v1/chat/completions"))
            let sent = (last.body["messages"] as? [[String: Any]]) ?? []
            #expect(sent.map { $0.str("role") ?? "?" } == ["system", "user", "assistant", "user"])
            #expect(sent.map { $0.str("content") ?? "?" } == ["Be terse.", "echo:hello one two", "hello one two", "echo:second turn"])
            checkStored(messages, answers: ["hello one two", "second turn"], model: "gpt-4.1", provider: "openai")
        }

        @Test func anthropic() throws {
            let mock = try Shared.mock.get()
            let relay = try Shared.relay.get()
            let (_, messages, results) = try twoTurns("claude-sonnet-4-6", relay, first: "echo:bonjour le monde", second: "echo:encore")
            #expect(results[1].text == "encore")
            let last = try mock.lastRequest()
            #expect(last.path == "/v1/messages")
            #expect(last.body.str("system") == "Be terse.")
            let sent = (last.body["messages"] as? [[String: Any]]) ?? []
            #expect(sent.map { $0.str("role") ?? "?" } == ["user", "assistant", "user"])
            let texts = sent.map { m -> String in
                if let s = m.str("content") { return s }
                return ((m["content"] as? [[String: Any]]) ?? []).compactMap { $0.str("text") }.joined()
            }
            #expect(texts == ["echo:bonjour le monde", "bonjour le monde", "echo:encore"])
            checkStored(messages, answers: ["bonjour le monde", "encore"], model: "claude-sonnet-4-6", provider: "anthropic")
        }

        @Test func gemini() throws {
            let mock = try Shared.mock.get()
            let relay = try Shared.relay.get()
            let (_, messages, results) = try twoTurns("gemini-2.5-flash", relay, first: "echo:hallo welt", second: "echo:noch einmal")
            #expect(results[1].text == "noch einmal")
            let last = try mock.lastRequest()
            #expect(last.path.contains("/v1beta/models/gemini-2.5-flash:streamGenerateContent"))
            let contents = (last.body["contents"] as? [[String: Any]]) ?? []
            #expect(contents.map { $0.str("role") ?? "?" } == ["user", "model", "user"])
            let texts = contents.map { (($0["parts"] as? [[String: Any]]) ?? []).compactMap { $0.str("text") }.joined() }
            #expect(texts == ["echo:hallo welt", "hallo welt", "echo:noch einmal"])
            let sys = ((last.body.obj("systemInstruction")?["parts"] as? [[String: Any]]) ?? []).compactMap { $0.str("text") }.joined()
            #expect(sys == "Be terse.")
            checkStored(messages, answers: ["hallo welt", "noch einmal"], model: "gemini-2.5-flash", provider: "gemini")
        }

        /// The built-in mock echoes the last user message and counts every word it was sent as
        /// prompt tokens, so the second turn's usage shows whether the history went along.
        @Test func mockEcho() throws {
            let relay = try Shared.relay.get()
            let (_, messages, results) = try twoTurns("mock-echo", relay, first: "alpha beta", second: "gamma delta epsilon")
            #expect(results[0].text == "alpha beta")
            #expect(results[1].text == "gamma delta epsilon")
            let usage2 = results[1].first("done")?.json?.obj("usage")
            // system (2) + alpha beta (2) + the answer alpha beta (2) + gamma delta epsilon (3)
            #expect(usage2?.int("prompt_tokens") == 9, "second turn prompt: \(String(describing: usage2))")
            checkStored(messages, answers: ["alpha beta", "gamma delta epsilon"], model: "mock-echo", provider: "mock")
        }
    }
}
