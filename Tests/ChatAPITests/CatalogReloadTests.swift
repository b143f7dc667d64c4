import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ChatAPIEndToEnd {
    /// SIGHUP reloads models.yaml: new turns take the new catalog, turns under way keep their
    /// deployment, and a broken file leaves the old catalog in force.
    @Suite(.serialized) struct CatalogReload {
        static func yaml(_ port: Int, deployment: String, upstream: String) -> String {
            """
            models:
              - name: r
                deployments: [{id: \(deployment), provider: openai, base_url: "http://127.0.0.1:\(port)/v1", api_key_env: T_OPENAI_KEY, model: \(upstream)}]
            """
        }

        func waitForMetric(_ relay: Relay, _ prefix: String, _ value: Double) -> Bool {
            waitUntil(seconds: 10) { (try? relay.metricsText()).flatMap { metricValue($0, prefix) } == value }
        }

        @Test func sighupSwapsTheCatalogForNewTurnsOnly() throws {
            let mock = try MockUpstream()
            let file = try CatalogFileFixture(CatalogReload.yaml(mock.port, deployment: "dep-a", upstream: "gpt-4.1"))
            let relay = try Relay(mock: nil, ["T_OPENAI_KEY": "k", "CHAT_MODELS_FILE": file.path])
            #expect(metricValue(try relay.metricsText(), "chatrelay_catalog_version{") == 1)

            // Under way before the reload: 20 tokens, 50 ms apart.
            let slow = try relay.openChat(["message": "before [mock tokens=20 delay=50]", "model": "r"])
            #expect(try slow.next(event: "start")?.json?.str("deployment") == "dep-a")
            #expect(try slow.next(event: "token") != nil)

            try file.write(CatalogReload.yaml(mock.port, deployment: "dep-b", upstream: "gpt-4.1-mini"))
            relay.child.signal(SIGHUP)
            #expect(waitForMetric(relay, "chatrelay_catalog_version{", 2), "the reload did not land")
            #expect(metricValue(try relay.metricsText(), "chatrelay_catalog_reloads_total{outcome=\"success\"}") == 1)

            let after = try relay.chat(["message": "after [mock tokens=2]", "model": "r"])
            #expect(after.first("start")?.json?.str("deployment") == "dep-b")
            #expect(after.text == "Hello from")

            let before = try slow.readToEnd()
            #expect(before.first("done") != nil, "\(before.events.map(\.event))")
            #expect(before.events.filter { $0.event == "token" }.count == 20)
            let stored = try relay.finalAnswer(try #require(before.conversationID))
            #expect(stored.str("deployment") == "dep-a" && stored.str("upstream_model") == "gpt-4.1")
            #expect(try relay.finalAnswer(try #require(after.conversationID)).str("deployment") == "dep-b")
            #expect((try mock.request(containing: "before")?["body"] as? [String: Any])?.str("model") == "gpt-4.1")
            #expect((try mock.request(containing: "after")?["body"] as? [String: Any])?.str("model") == "gpt-4.1-mini")

            // A broken file is refused, logged with its line and field, and changes nothing.
            try file.write("""
                models:
                  - name: r
                    deployments: [{id: x, provider: openai, api_key_env: T_OPENAI_KEY, price: {input_per_mtok: cheap, output_per_mtok: 1}}]
                """)
            relay.child.signal(SIGHUP)
            #expect(waitForMetric(relay, "chatrelay_catalog_last_reload_success", 0), "the refusal did not show in /metrics")
            let metrics = try relay.metricsText()
            #expect(metricValue(metrics, "chatrelay_catalog_reloads_total{outcome=\"failure\"}") == 1)
            #expect(metricValue(metrics, "chatrelay_catalog_version{") == 2)
            let still = try relay.chat(["message": "still [mock tokens=1]", "model": "r"])
            #expect(still.first("start")?.json?.str("deployment") == "dep-b")
            #expect(waitUntil(seconds: 5) { relay.child.log.contains("catalog reload refused") })
            #expect(relay.child.log.contains(":3: models[0].deployments[0].price.input_per_mtok: must be a number, not 'cheap'"), "\(relay.child.log)")

            // Fixed again: the next SIGHUP takes it.
            try file.write(CatalogReload.yaml(mock.port, deployment: "dep-c", upstream: "gpt-4.1"))
            relay.child.signal(SIGHUP)
            #expect(waitForMetric(relay, "chatrelay_catalog_version{", 3))
            #expect(try relay.chat(["message": "fixed [mock tokens=1]", "model": "r"]).first("start")?.json?.str("deployment") == "dep-c")
        }

        @Test func aBadFileStopsStartUpWithOneLineNamingFileLineAndField() throws {
            let file = try CatalogFileFixture("models:\n  - name: m\n    deployments:\n      - {id: d, provider: openai, api_key_env: T_NOT_SET}\n")
            let child = try Child(name: "relay-bad-catalog", executable: Binaries.chatrelay, arguments: [],
                                  environment: ["CHAT_MODELS_FILE": file.path, "DATABASE_URL": "postgresql://127.0.0.1:1/none",
                                                "CHAT_API_KEYS": "k1", "PATH": "/usr/bin:/bin"])
            #expect(child.waitForExit(seconds: 10) == 2)
            let lines = child.log.split(separator: "\n")
            #expect(lines.count == 1, "\(child.log)")
            #expect(lines.first == "chatrelay: \(file.path):4: models[0].deployments[0].api_key_env: T_NOT_SET is not set (set it, or add `optional: true` to list the model as unavailable until it is)")
        }
    }
}
