import Foundation
import Testing

extension ChatAPIEndToEnd {
    /// The response cache and request coalescing (docs/API.md, "Response cache") against the
    /// shipped mock, whose request log counts the upstream calls each deployment received.
    @Suite(.serialized) final class Cache {
        let mock: MockUpstream
        let relay: Relay
        let file: CatalogFileFixture

        static func yaml(_ port: Int) -> String {
            func d(_ id: String) -> String {
                "{id: \(id), provider: openai, base_url: \"http://127.0.0.1:\(port)/v1\", api_key_env: T_KEY, model: gpt-4.1, headers: {X-Mock-Tag: \(id)}}"
            }
            return """
            models:
              - {name: cached, cache_ttl_s: 600, deployments: [\(d("cache-a"))]}
              - {name: plain, deployments: [\(d("cache-p"))]}
              - {name: joined, deployments: [\(d("cache-j"))]}
            """
        }

        init() throws {
            mock = try MockUpstream()
            file = try CatalogFileFixture(Cache.yaml(mock.port))
            relay = try Relay(mock: nil, ["T_KEY": "k", "CHAT_MODELS_FILE": file.path, "CHAT_ADMIN_KEYS": AdminRelays.adminKey])
        }

        /// A message no other test sends, so each test starts with a cold cache.
        private func fresh(_ directives: String) -> String { "\(directives) \(UUID().uuidString)" }

        private func chat(_ body: [String: Any], headers: [String: String] = [:], key: String = "k1") throws -> SSEResult {
            var h = ["Authorization": "Bearer \(key)", "Content-Type": "application/json"]
            h.merge(headers) { _, n in n }
            return try SSEClient(port: relay.port, path: "/api/v1/chat", headers: h,
                                 body: try JSONSerialization.data(withJSONObject: body), timeout: 30).readToEnd()
        }

        /// The events as a client sees them, without what differs between any two answers
        /// (ids, timings, the conversation and message ids).
        private func shape(_ r: SSEResult) -> [String] {
            r.events.map { e in
                var j = e.json ?? [:]
                for k in ["message_id", "conversation_id", "ttft_ms", "latency_ms", "attempts", "cached", "cost_usd"] { j[k] = nil }
                let data = (try? JSONSerialization.data(withJSONObject: j, options: .sortedKeys)).map { String(decoding: $0, as: UTF8.self) } ?? ""
                return "\(e.event) \(data)"
            }
        }

        @Test func aMissThenAHitWithTheSameFramesAndOneUpstreamCall() throws {
            let message = fresh("[mock tokens=8 delay=5]")
            let before = mock.calls("cache-a")
            let scrape0 = try Scrape.get(relay)
            let live = try chat(["message": message, "model": "cached", "temperature": 0])
            let hit = try chat(["message": message, "model": "cached", "temperature": 0])
            #expect(mock.calls("cache-a") - before == 1, "the provider was called \(mock.calls("cache-a") - before) times")
            #expect(live.first("done")?.json?["cached"] == nil)
            #expect(hit.first("done")?.json?["cached"] as? Bool == true)
            #expect(shape(live) == shape(hit), "\(shape(live))\n\(shape(hit))")
            #expect(hit.text == mockText(tokens: 8))
            // Event ids follow the answer as live ones do (message id : characters).
            let ids = hit.events.filter { $0.event == "token" }.compactMap { $0.id?.split(separator: ":").last.map(String.init) }
            let liveIDs = live.events.filter { $0.event == "token" }.compactMap { $0.id?.split(separator: ":").last.map(String.init) }
            #expect(ids == liveIDs)
            // Stored as cached, and at no cost.
            let conv = try #require(hit.conversationID)
            let answer = try #require(try relay.messages(conv).last)
            #expect(answer["cached"] as? Bool == true && answer["content"] as? String == mockText(tokens: 8))
            #expect(hit.first("done")?.json?["cost_usd"] as? String == "0")
            let scrape1 = try Scrape.get(relay)
            #expect(scrape1.value("chatrelay_cache_hits_total") - scrape0.value("chatrelay_cache_hits_total") == 1)
            #expect(scrape1.value("chatrelay_cache_misses_total") - scrape0.value("chatrelay_cache_misses_total") == 1)
            #expect(scrape1.value("chatrelay_cache_served_bytes_total") - scrape0.value("chatrelay_cache_served_bytes_total")
                    == Double(mockText(tokens: 8).utf8.count))
            // The OpenAI surface is served the same entry: the answer does not depend on the surface.
            let openAI = try HTTPClient.request(port: relay.port, method: "POST", path: "/v1/chat/completions",
                                                headers: ["Authorization": "Bearer k1", "Content-Type": "application/json"],
                                                body: jsonBytes(["model": "cached", "temperature": 0, "messages": [["role": "user", "content": message]]]))
            #expect(openAI.status == 200 && mock.calls("cache-a") - before == 1, "\(openAI.status) \(openAI.text)")
        }

        @Test func entriesExpireAfterTheirTTL() throws {
            let message = fresh("[mock tokens=2]")
            let before = mock.calls("cache-p")
            let body: [String: Any] = ["message": message, "model": "plain", "cache": ["ttl_s": 1]]
            _ = try chat(body)
            let second = try chat(body)
            #expect(second.first("done")?.json?["cached"] as? Bool == true && mock.calls("cache-p") - before == 1)
            Thread.sleep(forTimeInterval: 1.3)
            let third = try chat(body)
            #expect(third.first("done")?.json?["cached"] == nil && mock.calls("cache-p") - before == 2)
        }

        @Test func noCacheAndNoStoreBypassTheCache() throws {
            let message = fresh("[mock tokens=2]")
            let before = mock.calls("cache-a")
            let body: [String: Any] = ["message": message, "model": "cached", "temperature": 0]
            _ = try chat(body)
            let bypass = try chat(body, headers: ["Cache-Control": "no-cache"])
            #expect(bypass.first("done")?.json?["cached"] == nil && mock.calls("cache-a") - before == 2)
            let refused = try chat(body, headers: ["Cache-Control": "no-store"])
            #expect(refused.first("done")?.json?["cached"] == nil && mock.calls("cache-a") - before == 3)
            let refusedInBody = try chat(body.merging(["cache": false]) { _, n in n })
            #expect(refusedInBody.first("done")?.json?["cached"] == nil && mock.calls("cache-a") - before == 4)
            // Without those, it is a hit again.
            let hit = try chat(body)
            #expect(hit.first("done")?.json?["cached"] as? Bool == true && mock.calls("cache-a") - before == 4)
        }

        @Test func aSampledRequestIsNotCachedUnlessItAsks() throws {
            let message = fresh("[mock tokens=2]")
            let before = mock.calls("cache-a")
            for temperature in [0.7, 0.7] {
                let r = try chat(["message": message, "model": "cached", "temperature": temperature])
                #expect(r.first("done")?.json?["cached"] == nil)
            }
            // No temperature at all means the provider's default, which samples: not cached either.
            _ = try chat(["message": message, "model": "cached"])
            _ = try chat(["message": message, "model": "cached"])
            #expect(mock.calls("cache-a") - before == 4)
            _ = try chat(["message": message, "model": "cached", "temperature": 0.7], headers: ["Cache-Control": "max-age=60"])
            let asked = try chat(["message": message, "model": "cached", "temperature": 0.7], headers: ["Cache-Control": "max-age=60"])
            #expect(asked.first("done")?.json?["cached"] as? Bool == true && mock.calls("cache-a") - before == 5)
        }

        @Test func aKeyCanTurnTheCacheOnForItsDeterministicRequests() throws {
            let created = try relay.admin("POST", "/admin/v1/keys", body: ["name": "cache-key-\(UUID().uuidString.prefix(8))", "cache_ttl_s": 60])
            #expect(created.status == 201 && (created.json?["key"] as? [String: Any])?["cache_ttl_s"] as? Int == 60, "\(created.text)")
            let secret = try #require(created.json?["secret"] as? String)
            let message = fresh("[mock tokens=2]")
            let before = mock.calls("cache-p")
            _ = try chat(["message": message, "model": "plain", "temperature": 0], key: secret)
            let hit = try chat(["message": message, "model": "plain", "temperature": 0], key: secret)
            #expect(hit.first("done")?.json?["cached"] as? Bool == true && mock.calls("cache-p") - before == 1)
            // Sampled requests of the same key are not cached; the setting is refused out of range.
            _ = try chat(["message": message, "model": "plain", "temperature": 1], key: secret)
            #expect(mock.calls("cache-p") - before == 2)
            let bad = try relay.admin("POST", "/admin/v1/keys", body: ["name": "bad-cache", "cache_ttl_s": 0])
            #expect(bad.status == 400 && bad.errorParam == "cache_ttl_s", "\(bad.text)")
        }

        @Test func tenIdenticalRequestsMakeOneUpstreamCallAndASlowReaderSlowsNobody() throws {
            let message = fresh("[mock tokens=400 delay=3]")
            let before = mock.calls("cache-j")
            let scrape0 = try Scrape.get(relay)
            let body = try JSONSerialization.data(withJSONObject: ["message": message, "model": "joined", "cache": ["ttl_s": 60]])
            let headers = ["Authorization": "Bearer k1", "Content-Type": "application/json"]
            // The slow reader asks first (so it is the one whose request went upstream) and then
            // reads nothing while the others stream.
            let slow = try SSEClient(port: relay.port, path: "/api/v1/chat", headers: headers, body: body, timeout: 60, receiveBuffer: 2048)
            var fast: [SSEClient] = []
            for _ in 0..<9 { fast.append(try SSEClient(port: relay.port, path: "/api/v1/chat", headers: headers, body: body, timeout: 30)) }
            let started = Date()
            let results = try fast.map { try $0.readToEnd() }
            let elapsed = Date().timeIntervalSince(started)
            #expect(results.allSatisfy { $0.text == mockText(tokens: 400) && $0.first("done") != nil })
            // 400 tokens 3 ms apart: about 1.2 s upstream; the nine are not held back by the tenth.
            #expect(elapsed < 4, "the nine took \(elapsed) s")
            #expect(mock.calls("cache-j") - before == 1, "the provider was called \(mock.calls("cache-j") - before) times")
            let scrape1 = try Scrape.get(relay)
            #expect(scrape1.value("chatrelay_cache_joins_total") - scrape0.value("chatrelay_cache_joins_total") == 9)
            // The slow one then reads its whole answer, at its own pace.
            let late = try slow.readToEnd()
            #expect(late.text == mockText(tokens: 400) && late.first("done") != nil)
            // Each client's turn is stored in its own conversation.
            #expect(Set(results.compactMap(\.conversationID) + [late.conversationID].compactMap { $0 }).count == 10)
        }
    }
}
