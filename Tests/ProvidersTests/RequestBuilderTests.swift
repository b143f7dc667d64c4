import Testing
import Providers

@Suite struct RequestBuilderTests {
    let config = ProviderConfig(openAIKey: "sk-o", anthropicKey: "sk-a", googleKey: "g-k")
    let conversation = [
        ChatMessage(role: .user, content: "Hello!"),
        ChatMessage(role: .assistant, content: "Hi."),
        ChatMessage(role: .user, content: "How are you?"),
    ]

    func body(_ r: UpstreamRequest) -> String { String(decoding: r.body, as: UTF8.self) }

    /// Routes `model` through the built-in catalog `config` makes, as a server without models.yaml does.
    func build(_ req: ChatRequest, _ model: String, _ config: ProviderConfig) -> Result<UpstreamRequest, ProviderError> {
        switch BuiltInCatalog.make(config).route(model, random: { 0 }) {
        case .failure(let e): return .failure(e)
        case .success(let route): return UpstreamRequests.build(req, route: route, defaults: config.generation)
        }
    }

    @Test func openAIReasoningModel() throws {
        let req = ChatRequest(model: "gpt-5.4-mini", system: "You are terse.", messages: conversation, maxTokens: 256, temperature: 0.7)
        let r = try build(req, "gpt-5.4-mini", config).get()
        #expect(r.url == "https://api.openai.com/v1/chat/completions")
        #expect(r.headers.map { "\($0.0): \($0.1)" } == ["Authorization: Bearer sk-o", "Content-Type: application/json"])
        #expect(body(r) == #"{"model":"gpt-5.4-mini","messages":[{"role":"developer","content":"You are terse."},{"role":"user","content":"Hello!"},{"role":"assistant","content":"Hi."},{"role":"user","content":"How are you?"}],"stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":256}"#)
        let one = ChatRequest(model: "o3", messages: conversation, temperature: 1)
        #expect(body(try build(one, "o3", config).get()).contains(#""temperature":1"#))
    }

    @Test func openAIClassicModel() throws {
        let req = ChatRequest(model: "gpt-4.1", system: "S", messages: [ChatMessage(role: .user, content: "q\"")], temperature: 0.2, topP: 0.9, stop: ["END"])
        let cfg = ProviderConfig(openAIKey: "k", openAIBaseURL: "http://127.0.0.1:9000/v1/")
        let r = try build(req, "gpt-4.1", cfg).get()
        #expect(r.url == "http://127.0.0.1:9000/v1/chat/completions")
        #expect(body(r) == #"{"model":"gpt-4.1","messages":[{"role":"system","content":"S"},{"role":"user","content":"q\""}],"stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":1024,"temperature":0.2,"top_p":0.9,"stop":["END"]}"#)
    }

    @Test func anthropic() throws {
        let messages = [ChatMessage(role: .user, content: "a"), ChatMessage(role: .user, content: "b"), ChatMessage(role: .assistant, content: "c")]
        let req = ChatRequest(model: "claude-sonnet-4-6", system: "You are terse.", messages: messages, temperature: 0.5, topP: 0.9, stop: ["x"])
        let r = try build(req, "claude-sonnet-4-6", config).get()
        #expect(r.url == "https://api.anthropic.com/v1/messages")
        #expect(r.header("X-API-KEY") == "sk-a")
        #expect(r.header("anthropic-version") == "2026-10-21")
        #expect(r.header("content-type") == "application/json")
        #expect(body(r) == #"{"model":"claude-sonnet-4-6","max_tokens":1024,"system":"You are terse.","messages":[{"role":"user","content":"a\n\nb"},{"role":"assistant","content":"c"}],"stream":true,"stop_sequences":["x"]}"#)
        var old = config
        old.anthropicVersion = "2023-06-01"
        let r2 = try build(req, "claude-sonnet-4-6", old).get()
        #expect(body(r2).contains(#""temperature":0.5,"top_p":0.9"#))
    }

    @Test func gemini() throws {
        let req = ChatRequest(model: "models/gemini-2.5-flash", system: "You are terse.", messages: conversation, maxTokens: 256, temperature: 0.7, topP: 0.5, stop: ["Z"])
        let r = try build(req, req.model, config).get()
        #expect(r.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        #expect(r.header("x-goog-api-key") == "g-k")
        #expect(body(r) == #"{"contents":[{"role":"user","parts":[{"text":"Hello!"}]},{"role":"model","parts":[{"text":"Hi."}]},{"role":"user","parts":[{"text":"How are you?"}]}],"systemInstruction":{"parts":[{"text":"You are terse."}]},"generationConfig":{"maxOutputTokens":256,"temperature":0.7,"topP":0.5,"stopSequences":["Z"]}}"#)
    }

    @Test func missingKeyIsProviderNotConfigured() {
        let req = ChatRequest(model: "claude-x", messages: conversation)
        let catalog = BuiltInCatalog.make(ProviderConfig(openAIKey: ""))
        for (model, variable) in [("gpt-5.4", "OPENAI_API_KEY"), ("claude-x", "ANTHROPIC_API_KEY"), ("gemini-2.5-pro", "GOOGLE_API_KEY")] {
            guard case .failure(let e) = catalog.route(model, random: { 0 }) else {
                Issue.record("expected failure for \(model)")
                continue
            }
            #expect(e.kind == .providerNotConfigured)
            #expect(e.apiType == "provider_not_configured")
            #expect(e.message.contains(variable), "\(e.message)")
        }
        // A route made before the key went away is refused by the builder, naming the variable.
        let keyless = Deployment(id: "d1", kind: .anthropic, baseURL: "http://x", apiKeyEnv: "ANT_KEY")
        guard case .failure(let e) = UpstreamRequests.build(req, route: RoutedModel(name: "m", deployment: keyless, model: "m"),
                                                            defaults: GenerationDefaults()) else {
            Issue.record("expected failure")
            return
        }
        #expect(e.kind == .providerNotConfigured && e.message.contains("ANT_KEY"))
    }
}

@Suite struct RoutingTests {
    let catalog = BuiltInCatalog.make(ProviderConfig(openAIKey: "o", anthropicKey: "a", googleKey: "g"))

    @Test(arguments: [
        ("gpt-5.4-mini", DeploymentKind.openai, "gpt-5.4-mini"), ("chatgpt-4o-latest", .openai, "chatgpt-4o-latest"),
        ("o3", .openai, "o3"), ("o4-mini", .openai, "o4-mini"), ("claude-sonnet-4-6", .anthropic, "claude-sonnet-4-6"),
        ("gemini-2.5-flash", .gemini, "gemini-2.5-flash"), ("models/gemini-2.5-pro", .gemini, "gemini-2.5-pro"),
        ("mock-echo", .mock, "mock-echo"), ("mock-tokens-5", .mock, "mock-tokens-5"),
    ])
    func routes(_ model: String, _ kind: DeploymentKind, _ upstream: String) throws {
        let r = try catalog.route(model, random: { 0 }).get()
        #expect(r.deployment.kind == kind)
        #expect(r.model == upstream)
        #expect(r.name == model)
    }

    @Test(arguments: ["", "llama-3", "omni", "o", "gemma-4-31b-it", "GPT-5", "models/gpt-5", "gemini-2.5/../x", "claude x"])
    func rejects(_ model: String) {
        guard case .failure(let e) = catalog.route(model, random: { 0 }) else {
            Issue.record("\(model) should not route")
            return
        }
        #expect(e.apiType == "invalid_request")
        #expect(e.httpStatus == 400)
        #expect(e.param == "model")
        #expect(e.message == "unknown model '\(model)'")
    }
}
