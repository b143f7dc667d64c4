import Testing
import Providers

/// `topK` reaches the providers that have it (Anthropic's `top_k` when its API version takes
/// sampling values, Gemini's `generationConfig.topK`) and never OpenAI, which would refuse it.
@Suite struct TopKTests {
    let config = ProviderConfig(openAIKey: "sk-o", anthropicKey: "sk-a", googleKey: "g-k")
    let request = ChatRequest(model: "m", messages: [ChatMessage(role: .user, content: "Hi")], temperature: 0.5, topK: 40)

    func body(_ model: String, _ config: ProviderConfig) throws -> String {
        let route = try BuiltInCatalog.make(config).route(model, random: { 0 }).get()
        return String(decoding: try UpstreamRequests.build(request, route: route, defaults: config.generation).get().body, as: UTF8.self)
    }

    @Test func anthropicOnlyWhenTheVersionTakesSamplingValues() throws {
        // The default version (2026-10-21) refuses sampling values even at their defaults.
        #expect(try !body("claude-sonnet-4-6", config).contains("top_k"))
        var old = config
        old.anthropicVersion = "2023-06-01"
        #expect(try body("claude-sonnet-4-6", old).contains(#""temperature":0.5,"top_k":40"#))
    }

    @Test func geminiInGenerationConfig() throws {
        #expect(try body("gemini-2.5-flash", config).contains(#""generationConfig":{"maxOutputTokens":1024,"temperature":0.5,"topK":40}"#))
    }

    @Test func openAIHasNone() throws {
        for model in ["gpt-4.1", "gpt-5.4-mini"] {
            let b = try body(model, config)
            #expect(!b.contains("top_k") && !b.contains("topK"), "\(model): \(b)")
        }
    }
}
