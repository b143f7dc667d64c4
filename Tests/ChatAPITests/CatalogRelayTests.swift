import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ChatAPIEndToEnd {
    /// A relay whose models.yaml sends each provider kind to the shipped mock upstream, which
    /// checks each request the way the real provider would (path, auth header, body) and logs it.
    @Suite(.serialized) final class Catalog {
        let mock: MockUpstream
        let relay: Relay
        let file: CatalogFileFixture
        static let env = ["T_OPENAI_KEY": "sk-openai-secret", "T_ANT_KEY": "sk-ant-secret", "T_GEM_KEY": "gem-secret",
                          "T_AZ_KEY": "az-secret", "T_GROQ_KEY": "groq-secret"]

        static func yaml(_ port: Int) -> String {
            let base = "http://127.0.0.1:\(port)"
            return """
            models:
              - name: k-openai
                deployments: [{id: d-openai, provider: openai, base_url: "\(base)/v1", api_key_env: T_OPENAI_KEY, model: gpt-4.1,
                               headers: {OpenAI-Organization: org-test}}]
              - name: k-anthropic
                deployments: [{id: d-anthropic, provider: anthropic, base_url: "\(base)", api_key_env: T_ANT_KEY, model: claude-sonnet-4-6}]
              - name: k-gemini
                deployments: [{id: d-gemini, provider: gemini, base_url: "\(base)/v1beta", api_key_env: T_GEM_KEY, model: gemini-2.5-flash}]
              - name: k-azure
                deployments: [{id: d-azure, provider: azure-openai, base_url: "\(base)/openai/deployments/gpt54", api_key_env: T_AZ_KEY,
                               api_version: 2024-10-21}]
              - name: k-compat
                system: "Be brief."
                max_tokens: 77
                deployments: [{id: d-vllm, provider: openai-compatible, base_url: "\(base)/compat/v1", model: meta-llama/Llama-3.3-70B-Instruct}]
              - name: k-compat-key
                deployments: [{id: d-groq, provider: openai-compatible, base_url: "\(base)/compat/v1", api_key_env: T_GROQ_KEY, model: llama-3.3-70b}]
              - name: k-mock
                deployments: [{id: d-mock, provider: mock, model: mock-tokens-4}]
              - name: "openai/*"
                deployments: [{id: d-openai-any, provider: openai, base_url: "\(base)/v1", api_key_env: T_OPENAI_KEY}]
              - name: k-unavailable
                deployments: [{id: d-nokey, provider: openai, api_key_env: T_UNSET_KEY, optional: true}]
            """
        }

        init() throws {
            mock = try MockUpstream()
            file = try CatalogFileFixture(Catalog.yaml(mock.port))
            relay = try Relay(mock: nil, Catalog.env.merging(["CHAT_MODELS_FILE": file.path]) { a, _ in a })
        }

        /// What each kind must put on the wire: path, the auth header (name, value) and the body's model.
        static let kinds: [(model: String, deployment: String, kind: String, path: String, auth: (String, String)?, upstream: String?)] = [
            ("k-openai", "d-openai", "openai", "/v1/chat/completions", ("authorization", "Bearer sk-openai-secret"), "gpt-4.1"),
            ("k-anthropic", "d-anthropic", "anthropic", "/v1/messages", ("x-api-key", "sk-ant-secret"), "claude-sonnet-4-6"),
            ("k-gemini", "d-gemini", "gemini", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", ("x-goog-api-key", "gem-secret"), nil),
            ("k-azure", "d-azure", "azure-openai", "/openai/deployments/gpt54/chat/completions", ("api-key", "az-secret"), nil),
            ("k-compat", "d-vllm", "openai-compatible", "/compat/v1/chat/completions", nil, "meta-llama/Llama-3.3-70B-Instruct"),
            ("k-compat-key", "d-groq", "openai-compatible", "/compat/v1/chat/completions", ("authorization", "Bearer groq-secret"), "llama-3.3-70b"),
        ]

        func checkRequest(_ k: (model: String, deployment: String, kind: String, path: String, auth: (String, String)?, upstream: String?),
                          marker: String) throws {
            let req = try #require(try mock.request(containing: marker), "the mock saw no request for \(k.model)")
            #expect(req["path"] as? String == k.path)
            let headers = req["headers"] as? [String: String] ?? [:]
            if let (name, value) = k.auth {
                #expect(headers[name] == value, "\(k.model): \(headers)")
            }
            // Each kind carries its key in its own header only.
            for other in ["authorization", "api-key", "x-api-key", "x-goog-api-key"] where other != k.auth?.0 {
                #expect(headers[other] == nil, "\(k.model) sent \(other)")
            }
            let body = req["body"] as? [String: Any] ?? [:]
            if let upstream = k.upstream { #expect(body["model"] as? String == upstream) }
            if k.kind == "azure-openai" { #expect((req["query"] as? String) == "api-version=2024-10-21") }
            if k.kind == "openai" { #expect(headers["openai-organization"] == "org-test") }
        }

        @Test func everyKindStreamsOnTheNativeAPIAndIsStoredWithItsDeployment() throws {
            for k in Catalog.kinds {
                let marker = "n-\(k.model)-\(UInt32.random(in: 0...UInt32.max))"
                let r = try relay.chat(["message": "\(marker) [mock tokens=3]", "model": k.model])
                #expect(r.status == 200, "\(k.model): \(r.status) \(String(decoding: r.body, as: UTF8.self))")
                #expect(r.text == "Hello from the", "\(k.model)")
                let start = r.first("start")?.json ?? [:]
                #expect(start.str("model") == k.model && start.str("provider") == k.kind && start.str("deployment") == k.deployment)
                #expect(r.first("done") != nil, "\(k.model): \(r.events.map(\.event))")
                try checkRequest(k, marker: marker)
                let stored = try relay.finalAnswer(try #require(r.conversationID))
                #expect(stored.str("model") == k.model)
                #expect(stored.str("deployment") == k.deployment)
                #expect(stored.str("upstream_model") == (k.upstream ?? (k.kind == "gemini" ? "gemini-2.5-flash" : k.model)))
                #expect(stored.str("status") == "complete")
            }
            // The in-process mock kind.
            let m = try relay.chat(["message": "anything", "model": "k-mock"])
            #expect(m.text == "tok1 tok2 tok3 tok4 ")
            #expect(m.first("start")?.json?.str("provider") == "mock")
            let stored = try relay.finalAnswer(try #require(m.conversationID))
            #expect(stored.str("deployment") == "d-mock" && stored.str("upstream_model") == "mock-tokens-4" && stored.str("model") == "k-mock")
        }

        @Test func everyKindStreamsOnTheOpenAIAPI() throws {
            for k in Catalog.kinds {
                let marker = "o-\(k.model)-\(UInt32.random(in: 0...UInt32.max))"
                let r = try relay.openAIStream(k.model, "\(marker) [mock tokens=4]")
                #expect(r.status == 200, "\(k.model): \(r.body)")
                #expect(chunkText(r.chunks) == "Hello from the mock", "\(k.model)")
                #expect(r.done)
                #expect(r.chunks.allSatisfy { $0.str("model") == k.model })
                #expect((r.chunks.last?["usage"] as? [String: Any])?.int("completion_tokens") == 4, "\(k.model)")
                try checkRequest(k, marker: marker)
            }
            let m = try relay.openAIStream("k-mock", "anything")
            #expect(chunkText(m.chunks) == "tok1 tok2 tok3 tok4 ")
        }

        @Test func modelDefaultsAndCompatibleFieldsReachTheServer() throws {
            let marker = "defaults-\(UInt32.random(in: 0...UInt32.max))"
            let r = try relay.chat(["message": "\(marker) [mock tokens=2]", "model": "k-compat"])
            #expect(r.status == 200)
            let body = try #require(try mock.request(containing: marker)?["body"] as? [String: Any])
            // The compatible server got max_tokens (the model's default), a system role, no max_completion_tokens.
            #expect(body["max_tokens"] as? Int == 77)
            #expect(body["max_completion_tokens"] == nil)
            let messages = body["messages"] as? [[String: Any]] ?? []
            #expect(messages.first?.str("role") == "system" && messages.first?.str("content") == "Be brief.")
        }

        @Test(arguments: ["no-usage", "usage-in-last", "empty-choices", "reasoning", "no-done", "usage-in-last,no-done,reasoning,empty-choices"])
        func compatibleServerQuirks(_ quirk: String) throws {
            let r = try relay.openAIStream("k-compat", "[mock tokens=3 quirk=\(quirk)]")
            #expect(r.status == 200, "\(r.body)")
            #expect(chunkText(r.chunks) == "Hello from the", "reasoning text must not be relayed")
            #expect(r.done)
            let usage = r.chunks.last?["usage"] as? [String: Any]
            if quirk == "no-usage" {
                // Nothing was reported; the gateway does not make numbers up here.
                #expect((usage?.int("completion_tokens") ?? 0) == 0)
            } else {
                #expect(usage?.int("completion_tokens") == 3, "\(quirk): \(r.chunks.last ?? [:])")
            }
            let native = try relay.chat(["message": "[mock tokens=3 quirk=\(quirk)]", "model": "k-compat"])
            #expect(native.text == "Hello from the")
            #expect(native.first("done")?.json?.str("finish_reason") == "stop", "\(quirk): \(native.events.map(\.event))")
            let stored = try relay.finalAnswer(try #require(native.conversationID))
            #expect(stored.str("status") == "complete")
        }

        @Test func aWildcardSendsTheRestOfTheName() throws {
            let marker = "wild-\(UInt32.random(in: 0...UInt32.max))"
            let r = try relay.chat(["message": "\(marker) [mock tokens=1]", "model": "openai/gpt-4.1-nano"])
            #expect(r.status == 200)
            #expect(r.first("start")?.json?.str("deployment") == "d-openai-any")
            let req = try #require(try mock.request(containing: marker))
            #expect((req["body"] as? [String: Any])?.str("model") == "gpt-4.1-nano")
            #expect(try relay.chat(["message": "x", "model": "anthropic/claude"]).status == 400)
        }

        @Test func anUnavailableModelIsListedAndRefusedNamingItsVariable() throws {
            let r = try relay.chat(["message": "hi", "model": "k-unavailable"])
            #expect(r.status == 400)
            #expect(r.errorType == "provider_not_configured")
            #expect(String(decoding: r.body, as: UTF8.self).contains("T_UNSET_KEY"))
            let v1 = try HTTPClient.request(port: relay.port, method: "POST", path: "/v1/chat/completions",
                                            headers: ["Authorization": "Bearer k1", "Content-Type": "application/json"],
                                            body: jsonBytes(["model": "k-unavailable", "messages": [["role": "user", "content": "hi"]]]))
            #expect(v1.status == 400 && v1.text.contains("T_UNSET_KEY"))

            let list = try relay.get("/api/v1/models")
            let models = (list.json?["models"] as? [[String: Any]]) ?? []
            let row = try #require(models.first { $0.str("id") == "k-unavailable" })
            #expect(row["available"] as? Bool == false)
            #expect(row["missing_keys"] as? [String] == ["T_UNSET_KEY"])
            #expect(models.first { $0.str("id") == "k-azure" }?.str("provider") == "azure-openai")
            #expect(models.first { $0.str("id") == "openai/*" }?["wildcard"] as? Bool == true)
            #expect(models.count == 9)
            // Neither listing shows a key or where a deployment lives.
            let openai = try relay.get("/v1/models")
            #expect(((openai.json?["data"] as? [[String: Any]]) ?? []).count == 9)
            for text in [list.text, openai.text] {
                for secret in Catalog.env.values { #expect(!text.contains(secret)) }
                #expect(!text.contains("127.0.0.1") && !text.contains(String(mock.port)))
            }
        }
    }
}
