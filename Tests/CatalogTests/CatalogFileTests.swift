import Catalog
import Providers
import Testing

/// models.yaml → ModelCatalog: every field read, and every mistake refused with the file, line and field.
@Suite struct CatalogFileTests {
    static let env = ["OPENAI_API_KEY": "sk-o", "ANTHROPIC_API_KEY": "sk-a", "GOOGLE_API_KEY": "g-k", "AZURE_KEY": "az-k", "GROQ_KEY": "gq"]

    func load(_ yaml: String, env: [String: String] = CatalogFileTests.env) -> Result<ModelCatalog, CatalogLoadError> {
        CatalogFile.parse(yaml: yaml, file: "models.yaml", context: CatalogFile.Context(environment: env))
    }

    /// The error for `yaml`, or a recorded issue when it loads.
    func refusal(_ yaml: String, env: [String: String] = CatalogFileTests.env) -> CatalogLoadError? {
        switch load(yaml, env: env) {
        case .success: Issue.record("expected the file to be refused"); return nil
        case .failure(let e): return e
        }
    }

    static let full = """
        default_model: chat-fast
        models:
          - name: chat-fast
            max_tokens: 512
            temperature: 0.3
            system: "You are terse."
            deployments:
              - id: openai-main
                provider: openai
                base_url: https://api.openai.com/v1/
                api_key_env: OPENAI_API_KEY
                model: gpt-5.4-mini
                weight: 3
                max_concurrent: 500
                timeouts: {connect_s: 2.5, first_token_s: 60, idle_s: 120}
                headers: {OpenAI-Organization: org-123}
                price: {input_per_mtok: 0.25, output_per_mtok: 2}
              - id: azure-east
                provider: azure-openai
                base_url: https://east.openai.azure.com/openai/deployments/gpt54mini
                api_key_env: AZURE_KEY
                api_version: 2024-10-21
              - id: local-vllm
                provider: openai-compatible
                base_url: http://10.0.0.5:8000/v1
                model: meta-llama/Llama-3.3-70B-Instruct
                include_usage: false
          - name: claude
            deployments:
              - {id: anthropic-main, provider: anthropic, api_key_env: ANTHROPIC_API_KEY, model: claude-sonnet-4-6}
          - name: gem
            deployments:
              - {id: gemini-main, provider: gemini, api_key_env: GOOGLE_API_KEY, model: gemini-2.5-flash}
          - name: "openai/*"
            deployments:
              - {id: openai-any, provider: openai, api_key_env: OPENAI_API_KEY}
          - name: "groq/*"
            deployments:
              - {id: groq, provider: openai-compatible, base_url: "https://api.groq.com/openai/v1", api_key_env: GROQ_KEY}
          - name: "groq/llama*"
            deployments:
              - {id: groq-llama, provider: openai-compatible, base_url: "https://api.groq.com/openai/v1", api_key_env: GROQ_KEY}
          - name: later
            deployments:
              - {id: later-key, provider: openai, api_key_env: NOT_SET_YET, optional: true}
          - name: demo
            deployments:
              - {id: mock-1, provider: mock, model: mock-tokens-3}
        """

    @Test func readsEveryField() throws {
        let c = try load(CatalogFileTests.full).get()
        #expect(c.models.map(\.name) == ["chat-fast", "claude", "gem", "openai/*", "groq/*", "groq/llama*", "later", "demo"])
        #expect(c.defaultModel == "chat-fast")
        let fast = try #require(c.lookup("chat-fast"))
        #expect(fast.defaults == ModelDefaults(maxTokens: 512, temperature: 0.3, system: "You are terse."))
        #expect(fast.line == 3)
        let main = fast.deployments[0]
        #expect(main.kind == .openai && main.baseURL == "https://api.openai.com/v1" && main.apiKey == "sk-o")
        #expect(main.model == "gpt-5.4-mini" && main.weight == 3 && main.maxConcurrent == 500)
        #expect(main.timeouts == DeploymentTimeouts(connectMs: 2_500, firstTokenMs: 60_000, idleMs: 120_000))
        #expect(main.headers.map { "\($0.0)=\($0.1)" } == ["OpenAI-Organization=org-123"])
        #expect(main.price == Price(inputPerMTok: 0.25, outputPerMTok: 2))
        #expect(main.line == 8)
        let azure = fast.deployments[1]
        #expect(azure.kind == .azureOpenAI && azure.apiVersion == "2024-10-21" && azure.apiKey == "az-k" && azure.weight == 1)
        let vllm = fast.deployments[2]
        #expect(vllm.kind == .openAICompatible && vllm.apiKeyEnv == nil && vllm.hasKey && !vllm.includeUsage)
        let claude = try #require(c.lookup("claude")).deployments[0]
        #expect(claude.baseURL == "https://api.anthropic.com" && claude.apiVersion == ProviderConfig.defaultAnthropicVersion)
        #expect(try #require(c.lookup("gem")).deployments[0].baseURL == "https://generativelanguage.googleapis.com/v1beta")
        let later = try #require(c.lookup("later"))
        #expect(!later.isAvailable && later.missingKeyVariables == ["NOT_SET_YET"])
    }

    @Test func readsDeploymentRateLimits() throws {
        let c = try load(CatalogFileTests.header + "      - {id: d, provider: mock, rpm: 600, tpm: 90000}\n      - {id: e, provider: mock}\n").get()
        let ds = try #require(c.lookup("m")).deployments
        #expect(ds[0].rpm == 600 && ds[0].tpm == 90_000)
        #expect(ds[1].rpm == nil && ds[1].tpm == nil)
    }

    @Test func wildcardsSendTheRestOfTheNameAndTheLongestPatternWins() throws {
        let c = try load(CatalogFileTests.full).get()
        let any = try c.route("openai/gpt-4.1-nano", random: { 0 }).get()
        #expect(any.deployment.id == "openai-any" && any.model == "gpt-4.1-nano" && any.name == "openai/gpt-4.1-nano")
        #expect(try c.route("groq/mixtral-8x7b", random: { 0 }).get().deployment.id == "groq")
        let llama = try c.route("groq/llama-3.3-70b", random: { 0 }).get()
        #expect(llama.deployment.id == "groq-llama" && llama.model == "llama-3.3-70b")
        // The bare prefix names no model.
        #expect(throws: ProviderError.self) { try c.route("openai/", random: { 0 }).get() }
        #expect(throws: ProviderError.self) { try c.route("anthropic/claude", random: { 0 }).get() }
        let exact = try c.route("claude", random: { 0 }).get()
        #expect(exact.model == "claude-sonnet-4-6" && exact.defaults == ModelDefaults())
    }

    @Test func deploymentsAreChosenByWeight() throws {
        let c = try load(CatalogFileTests.full).get()
        var counts: [String: Int] = [:]
        var n: UInt64 = 0
        for _ in 0..<500 {
            let r = try c.route("chat-fast", random: { n += 1; return n }).get()
            counts[r.deployment.id, default: 0] += 1
        }
        // Weights 3 : 1 : 1 over a uniform sequence.
        #expect(counts == ["openai-main": 300, "azure-east": 100, "local-vllm": 100])
    }

    @Test func aModelWhoseKeysAreAllMissingIsUnavailableNamingTheVariable() throws {
        let c = try load(CatalogFileTests.full).get()
        guard case .failure(let e) = c.route("later", random: { 0 }) else {
            Issue.record("expected the model to be unavailable")
            return
        }
        #expect(e.kind == .providerNotConfigured)
        #expect(e.message == "model 'later' is unavailable: set NOT_SET_YET (deployment 'later-key')")
        #expect(e.httpStatus == 400 && e.param == "model")
    }

    // MARK: Refusals: each names file, line and field

    static let header = "models:\n  - name: m\n    deployments:\n"

    @Test(arguments: [
        // (yaml, line, field, message fragment)
        ("modles: []\n", 1, "modles", "unknown field"),
        ("models:\n  - name: m\n    temprature: 1\n    deployments: [{id: d, provider: mock}]\n", 3, "models[0].temprature", "unknown field"),
        (header + "      - id: d\n        provider: openai\n        api_key: OPENAI_API_KEY\n", 6, "models[0].deployments[0].api_key", "unknown field"),
        (header + "      - id: d\n        provider: mock\n        timeouts: {connect: 3}\n", 6, "models[0].deployments[0].timeouts.connect", "unknown field"),
        ("models:\n  - deployments: [{id: d, provider: mock}]\n", 2, "models[0].name", "is required"),
        ("models:\n  - name: m\n", 2, "models[0].deployments", "is required"),
        (header + "      - provider: mock\n", 4, "models[0].deployments[0].id", "is required"),
        (header + "      - id: d\n", 4, "models[0].deployments[0].provider", "is required"),
        (header + "      - id: d\n        provider: openai-compatible\n", 4, "models[0].deployments[0].base_url", "is required"),
        (header + "      - {id: d, provider: azure-openai, base_url: 'https://x.openai.azure.com/openai/deployments/a', api_key_env: AZURE_KEY}\n",
         4, "models[0].deployments[0].api_version", "is required"),
        (header + "      - {id: d, provider: openai}\n", 4, "models[0].deployments[0].api_key_env", "is required"),
        (header + "      - {id: d, provider: cohere}\n", 4, "models[0].deployments[0].provider", "'cohere' is not one of"),
        (header + "      - id: d\n        provider: mock\n        rpm: 0\n", 6, "models[0].deployments[0].rpm", "must be from 1 to"),
        (header + "      - id: d\n        provider: mock\n        tpm: -5\n", 6, "models[0].deployments[0].tpm", "must be from 1 to"),
        ("models:\n  - name: m\n    deployments: [{id: d, provider: mock}]\n  - name: m\n    deployments: [{id: e, provider: mock}]\n",
         4, "models[1].name", "already defined on line 2"),
        ("models:\n  - name: m\n    deployments: [{id: d, provider: mock}]\n  - name: n\n    deployments:\n      - {id: d, provider: mock}\n",
         6, "models[1].deployments[0].id", "already used on line 3"),
        (header + "      - id: d\n        provider: openai-compatible\n        base_url: ftp://host/v1\n", 6,
         "models[0].deployments[0].base_url", "is not an http:// or https:// URL"),
        (header + "      - id: d\n        provider: openai-compatible\n        base_url: 'http:///v1'\n", 6,
         "models[0].deployments[0].base_url", "with a host"),
        (header + "      - id: d\n        provider: mock\n        price:\n          input_per_mtok: cheap\n          output_per_mtok: 1\n", 7,
         "models[0].deployments[0].price.input_per_mtok", "must be a number, not 'cheap'"),
        (header + "      - id: d\n        provider: mock\n        price: {input_per_mtok: \"0.25\", output_per_mtok: 1}\n", 6,
         "models[0].deployments[0].price.input_per_mtok", "must be a number, not the quoted string '0.25'"),
        (header + "      - id: d\n        provider: mock\n        price: {input_per_mtok: 1}\n", 6,
         "models[0].deployments[0].price.output_per_mtok", "is required"),
        (header + "      - id: d\n        provider: openai\n        api_key_env: MISSING_KEY\n", 6,
         "models[0].deployments[0].api_key_env", "MISSING_KEY is not set"),
        (header + "      - id: d\n        provider: mock\n        weight: -1\n", 6, "models[0].deployments[0].weight", "must be from 0 to 1000"),
        (header + "      - id: d\n        provider: mock\n        model: gpt-5\n", 6, "models[0].deployments[0].model", "not a built-in mock model"),
        (header + "      - id: d\n        provider: mock\n        headers: {Content-Type: text/plain}\n", 6,
         "models[0].deployments[0].headers.Content-Type", "is set by ChatRelay itself"),
        ("models:\n  - name: 'a b'\n    deployments: [{id: d, provider: mock}]\n", 2, "models[0].name", "must be letters"),
        ("models:\n  - name: m\n    deployments: [{id: d, provider: mock}]\ndefault_model: nope\n", 4, "default_model", "not a model in this file"),
        ("models:\n  - name: m\n    deployments: [{id: d, provider: mock}\n", 4, "", "is not valid YAML"),
        ("", 0, "models", "is required"),
    ] as [(String, Int, String, String)])
    func refusesWithFileLineAndField(_ yaml: String, _ line: Int, _ field: String, _ fragment: String) {
        guard let e = refusal(yaml) else { return }
        #expect(e.file == "models.yaml")
        #expect(e.line == line, "\(e)")
        #expect(e.field == field, "\(e)")
        #expect(e.message.contains(fragment), "\(e)")
        // One line, starting with the place.
        #expect(!e.description.contains("\n"))
        #expect(e.description.hasPrefix(line > 0 ? "models.yaml:\(line): " : "models.yaml: "))
    }

    @Test func readsResilienceSettings() throws {
        let yaml = """
            models:
              - name: main
                fallbacks: [backup, "openai/gpt-4.1"]
                on_midstream_failure: restart
                hedge_after_ms: 800
                routing: ordered
                retry: {max_attempts: 4, retries_per_deployment: 2, budget_s: 20, backoff_base_ms: 100, backoff_max_ms: 2000, max_retry_after_s: 10}
                deployments:
                  - {id: a, provider: mock, breaker: {consecutive_failures: 3, error_rate: 0.25, window_s: 10, min_requests: 4, cooldown_s: 5}}
              - name: backup
                deployments: [{id: b, provider: mock}]
              - name: "openai/*"
                deployments: [{id: o, provider: openai, api_key_env: OPENAI_API_KEY}]
            """
        let c = try load(yaml).get()
        let m = try #require(c.lookup("main"))
        #expect(m.resilience.fallbacks == ["backup", "openai/gpt-4.1"])
        #expect(m.resilience.restartMidstream && m.resilience.hedgeAfterMs == 800 && m.resilience.ordered)
        var retry = RetryPolicy()
        retry.maxAttempts = 4
        retry.retriesPerDeployment = 2
        retry.budgetMs = 20_000
        retry.backoffBaseMs = 100
        retry.backoffMaxMs = 2_000
        retry.maxRetryAfterMs = 10_000
        #expect(m.resilience.retry == retry)
        let p = m.deployments[0].health.policy
        #expect(p.consecutiveFailures == 3 && p.errorRate == 0.25 && p.windowMs == 10_000 && p.minRequests == 4 && p.cooldownMs == 5_000)
        #expect(try #require(c.lookup("backup")).resilience == ModelResilience())
    }

    @Test func aReloadKeepsTheLiveStateOfUnchangedDeployments() throws {
        let old = try load("models:\n  - name: m\n    deployments: [{id: a, provider: mock}, {id: b, provider: mock}]\n").get()
        let new = try load("models:\n  - name: m\n    deployments: [{id: a, provider: mock}, {id: b, provider: mock, breaker: {cooldown_s: 9}}]\n").get()
            .adoptingHealth(from: old)
        #expect(new.models[0].deployments[0].health === old.models[0].deployments[0].health)
        #expect(new.models[0].deployments[1].health !== old.models[0].deployments[1].health, "new breaker settings start afresh")
    }

    @Test(arguments: [
        ("models:\n  - name: m\n    fallbacks: [nope]\n    deployments: [{id: d, provider: mock}]\n", 3, "models[0].fallbacks", "'nope' is not a model"),
        ("models:\n  - name: m\n    fallbacks: [m]\n    deployments: [{id: d, provider: mock}]\n", 3, "models[0].fallbacks", "the model itself"),
        ("models:\n  - name: m\n    on_midstream_failure: retry\n    deployments: [{id: d, provider: mock}]\n", 3,
         "models[0].on_midstream_failure", "not error or restart"),
        ("models:\n  - name: m\n    retry: {attempts: 3}\n    deployments: [{id: d, provider: mock}]\n", 3, "models[0].retry.attempts", "unknown field"),
        ("models:\n  - name: m\n    deployments: [{id: d, provider: mock, breaker: {error_rate: 2}}]\n", 3,
         "models[0].deployments[0].breaker.error_rate", "must be from"),
    ] as [(String, Int, String, String)])
    func refusesBadResilienceSettings(_ yaml: String, _ line: Int, _ field: String, _ fragment: String) {
        guard let e = refusal(yaml) else { return }
        #expect(e.line == line && e.field == field && e.message.contains(fragment), "\(e)")
    }

    @Test func anUnreadableFileIsRefusedByName() {
        guard case .failure(let e) = CatalogFile.load(path: "/nonexistent/models.yaml", context: CatalogFile.Context(environment: [:])) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(e.description.hasPrefix("/nonexistent/models.yaml: cannot be read"))
    }
}
