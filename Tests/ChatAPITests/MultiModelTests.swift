import Foundation
import Testing

extension ChatAPIEndToEnd {
    /// Several models in one turn (docs/API.md, "Several models in one turn") against the shipped
    /// mock: each run is its own upstream call (tagged per deployment), so the mock's request log
    /// shows what each model received and whether its transfer was cancelled.
    @Suite(.serialized) final class MultiModel {
        let mock: MockUpstream
        let relay: Relay
        let file: CatalogFileFixture

        static func yaml(_ port: Int) -> String {
            func d(_ id: String, _ extra: String = "") -> String {
                "{id: \(id), provider: openai, base_url: \"http://127.0.0.1:\(port)/v1\", api_key_env: T_KEY, model: gpt-4.1, headers: {X-Mock-Tag: \(id)}\(extra)}"
            }
            let once = "retry: {retries_per_deployment: 0}"
            return """
            models:
              - {name: run-a, \(once), deployments: [\(d("ra", ", price: {input_per_mtok: 1, output_per_mtok: 2}"))]}
              - {name: run-b, \(once), deployments: [\(d("rb"))]}
              - {name: run-c, \(once), deployments: [\(d("rc"))]}
              - {name: narrow, context_tokens: 1000, max_tokens: 500, deployments: [\(d("rn"))]}
            """
        }

        init() throws {
            mock = try MockUpstream()
            file = try CatalogFileFixture(MultiModel.yaml(mock.port))
            relay = try Relay(mock: nil, ["T_KEY": "k", "CHAT_MODELS_FILE": file.path, "CHAT_MAX_MODELS_PER_TURN": "3"])
        }

        deinit { try? mock.clearFaults() }

        /// Each run's text, done/error event and token count, by run id.
        struct Runs {
            var text: [String: String] = [:]
            var closing: [String: SSEEvent] = [:]
            var model: [String: String] = [:]

            init(_ r: SSEResult) {
                for e in r.events {
                    guard let j = e.json, let run = j["run"] as? String else { continue }
                    model[run] = j["model"] as? String
                    switch e.event {
                    case "token": text[run, default: ""] += (j["text"] as? String) ?? ""
                    case "done", "error": closing[run] = e
                    default: break
                    }
                }
            }

            func run(of model: String) -> String? { self.model.first { $0.value == model }?.key }
        }

        @Test func threeModelsStreamTogetherAndOneFailureEndsOnlyItsRun() throws {
            try mock.setFault("rc", ["status": 400, "times": 1])
            let r = try relay.chat(["message": "[mock tokens=6 delay=10 stamp]", "models": ["run-a", "run-b", "run-c"]])
            #expect(r.status == 200)
            let names = r.events.map(\.event)
            #expect(names.first == "start" && names.last == "end", "\(names)")
            #expect(names.filter { $0 == "end" }.count == 1)
            let start = try #require(r.first("start")?.json)
            let listed = try #require(start["runs"] as? [[String: Any]])
            #expect(listed.map { $0["model"] as? String } == ["run-a", "run-b", "run-c"])
            // Every event between start and end names its run and model.
            for e in r.events where e.event != "start" && e.event != "end" {
                #expect(e.json?["run"] is String && e.json?["model"] is String, "\(e.event) \(e.data)")
                #expect(e.id?.hasPrefix((e.json?["run"] as? String ?? "-") + ":") == true, "id \(e.id ?? "nil")")
            }
            let runs = Runs(r)
            let a = try #require(runs.run(of: "run-a")), b = try #require(runs.run(of: "run-b"))
            let c = try #require(listed.first { $0["model"] as? String == "run-c" }?["run"] as? String)
            #expect(runs.closing[a]?.event == "done" && runs.closing[b]?.event == "done")
            #expect(runs.closing[a]?.json?["status"] as? String == "complete")
            #expect(runs.closing[c]?.event == "error", "\(String(describing: runs.closing[c]?.data))")
            // The runs' tokens interleave: the models streamed at the same time, not one after another.
            let order = r.events.filter { $0.event == "token" }.compactMap { $0.json?["run"] as? String }
            let firstB = try #require(order.firstIndex(of: b)), lastA = try #require(order.lastIndex(of: a))
            #expect(firstB < lastA, "runs streamed one after another: \(order)")
            // Priced model: its cost is on its done event.
            #expect(runs.closing[a]?.json?["cost_usd"] is String)

            // Stored: one user message and three answers, each with its run; the first to
            // complete is selected, and `end` says which.
            let conv = try #require(r.conversationID)
            let messages = try relay.messages(conv)
            #expect(messages.map { $0["role"] as? String } == ["user", "assistant", "assistant", "assistant"])
            let byID = Dictionary(uniqueKeysWithValues: messages.compactMap { m in (m["id"] as? String).map { ($0, m) } })
            let runA = try #require(byID[a]?["run"] as? [String: Any]), runC = try #require(byID[c]?["run"] as? [String: Any])
            #expect(runA["status"] as? String == "complete" && runC["status"] as? String == "error")
            #expect(byID[a]?["content"] as? String == runs.text[a] && !(runs.text[a] ?? "").isEmpty)
            #expect(runA["cost_usd"] as? String == runs.closing[a]?.json?["cost_usd"] as? String)
            let selected = messages.compactMap { ($0["run"] as? [String: Any]).flatMap { $0["selected"] as? Bool == true ? $0["id"] as? String : nil } }
            let end = try #require(r.first("end")?.json)
            #expect(selected.count == 1 && selected.first == end["selected_run"] as? String, "\(selected) \(end)")
            #expect(Set(selected).isSubset(of: [a, b]))
            #expect(mock.calls("ra") >= 1 && mock.calls("rb") >= 1 && mock.calls("rc") >= 1)
        }

        @Test func theSelectedRunIsTheHistoryOfTheNextTurn() throws {
            let first = try relay.chat(["message": "[mock tokens=3 stamp]", "models": ["run-a", "run-b"]])
            let conv = try #require(first.conversationID)
            let runs = Runs(first)
            let a = try #require(runs.run(of: "run-a")), b = try #require(runs.run(of: "run-b"))
            #expect(runs.text[a] != runs.text[b], "stamped answers differ per run")

            // Select b explicitly, then ask again: only b's answer is in the history sent upstream.
            let sel = try HTTPClient.request(port: relay.port, method: "POST", path: "/api/v1/conversations/\(conv)/runs/\(b)/select",
                                             headers: ["Authorization": "Bearer k1"])
            #expect(sel.status == 200 && sel.json?["selected_run"] as? String == b, "\(sel.status) \(sel.text)")
            _ = try relay.chat(["message": "[mock tokens=1] next", "model": "run-a", "conversation_id": conv])
            var history = try assistantHistory(tag: "ra")
            #expect(history == [runs.text[b] ?? "?"], "\(history)")

            // continue_from on the next turn selects a instead.
            _ = try relay.chat(["message": "[mock tokens=1] again", "model": "run-a", "conversation_id": conv, "continue_from": a])
            history = try assistantHistory(tag: "ra")
            #expect(history.first == runs.text[a], "\(history)")

            // Another key cannot select it; an id from nowhere is 404.
            let other = try HTTPClient.request(port: relay.port, method: "POST", path: "/api/v1/conversations/\(conv)/runs/\(b)/select",
                                               headers: ["Authorization": "Bearer k2"])
            #expect(other.status == 404)
            let bad = try relay.chat(["message": "x", "model": "run-a", "conversation_id": conv, "continue_from": UUID().uuidString.lowercased()])
            #expect(bad.status == 404 && bad.errorType == "not_found")
        }

        /// The assistant messages of the last request tagged `tag` that the mock received.
        private func assistantHistory(tag: String) throws -> [String] {
            let last = try #require(try mock.requests(tag: tag).last)
            let body = try #require(last["body"] as? [String: Any], "\(last.keys)")
            let messages = try #require(body["messages"] as? [[String: Any]])
            return messages.filter { $0["role"] as? String == "assistant" }.compactMap { $0["content"] as? String }
        }

        @Test func fastestCancelsTheLosersAtOnce() throws {
            try mock.setFault("rb", ["kind": "slow_first", "first_delay_ms": 3000, "times": 1])
            try mock.setFault("rc", ["kind": "slow_first", "first_delay_ms": 3000, "times": 1])
            let beforeB = mock.calls("rb"), beforeC = mock.calls("rc")
            let started = Date()
            let r = try relay.chat(["message": "[mock tokens=4 delay=5]", "models": ["run-a", "run-b", "run-c"], "mode": "fastest"])
            #expect(Date().timeIntervalSince(started) < 2.5, "the losers were waited for")
            let runs = Runs(r)
            let a = try #require(runs.run(of: "run-a"))
            #expect(runs.closing[a]?.json?["status"] as? String == "complete")
            #expect(runs.text[a] == mockText(tokens: 4))
            let losers = runs.closing.filter { $0.key != a }
            #expect(losers.count == 2 && losers.allSatisfy { $0.value.json?["status"] as? String == "cancelled" }, "\(losers.mapValues(\.data))")
            #expect(r.first("end")?.json?["selected_run"] as? String == a)
            // The mock saw both losers' connections dropped before they answered.
            #expect(waitUntil(seconds: 5) {
                let b = (try? mock.requests(tag: "rb")) ?? [], c = (try? mock.requests(tag: "rc")) ?? []
                return b.count > beforeB && c.count > beforeC
                    && b.last?["outcome"] as? String == "disconnected" && c.last?["outcome"] as? String == "disconnected"
            }, "\(String(describing: try? mock.requests(tag: "rb").last))")
            let stored = try relay.messages(try #require(r.conversationID)).filter { $0["role"] as? String == "assistant" }
            #expect(stored.filter { $0["status"] as? String == "cancelled" }.count == 2)
        }

        /// A model whose catalog entry gives its context window gets only the newest history that
        /// fits it: (1000 − 500) tokens × 3 characters = 1,500 characters here.
        @Test func theHistoryIsCutToTheModelsContextWindow() throws {
            let a = String(repeating: "a", count: 800), b = String(repeating: "b", count: 800)
            let first = try relay.chat(["message": "[mock tokens=1] \(a)", "model": "narrow"])
            let conv = try #require(first.conversationID)
            _ = try relay.chat(["message": "[mock tokens=1] \(b)", "model": "narrow", "conversation_id": conv])
            _ = try relay.chat(["message": "[mock tokens=1] c", "model": "narrow", "conversation_id": conv])
            let last = try #require(try mock.requests(tag: "rn").last)
            let messages = try #require((last["body"] as? [String: Any])?["messages"] as? [[String: Any]])
            let contents = messages.compactMap { $0["content"] as? String }
            #expect(contents.contains { $0.contains(b) } && !contents.contains { $0.contains(a) }, "\(contents.map(\.count))")
            #expect(messages.first?["role"] as? String == "user")
        }

        @Test func badRequestsAreRefusedWithTheirField() throws {
            let cases: [([String: Any], String)] = [
                (["message": "x", "model": "run-a", "models": ["run-b"]], "models"),
                (["message": "x", "models": []], "models"),
                (["message": "x", "models": ["run-a", "run-b", "run-c", "run-a"]], "models"),
                (["message": "x", "models": ["run-a", "nope"]], "models[1]"),
                (["message": "x", "model": "run-a", "mode": "fastest"], "mode"),
                (["message": "x", "models": ["run-a"], "mode": "slowest"], "mode"),
                (["message": "x", "models": ["run-a"], "fallbacks": ["run-b"]], "fallbacks"),
                (["message": "x", "model": "run-a", "continue_from": "not-a-uuid"], "continue_from"),
                (["message": "x", "model": "run-a", "continue_from": UUID().uuidString], "continue_from"),
                (["message": "x", "model": "run-a", "on_disconnect": "later"], "on_disconnect"),
            ]
            for (body, param) in cases {
                let r = try HTTPClient.request(port: relay.port, method: "POST", path: "/api/v1/chat",
                                               headers: ["Authorization": "Bearer k1", "Content-Type": "application/json"], body: jsonBytes(body))
                #expect((400...404).contains(r.status) && r.errorParam == param, "\(body): \(r.status) \(r.text)")
            }
        }
    }
}
