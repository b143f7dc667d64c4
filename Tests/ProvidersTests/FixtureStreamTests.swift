import Testing
import Providers

@Suite struct FixtureStreamTests {
    struct Case: Sendable, CustomStringConvertible {
        var file: String
        var provider: ProviderKind
        var description: String { file }
    }

    static let cases = [
        Case(file: "openai-stream.txt", provider: .openai),
        Case(file: "anthropic-stream.txt", provider: .anthropic),
        Case(file: "anthropic-error-stream.txt", provider: .anthropic),
        Case(file: "gemini-stream.txt", provider: .gemini),
    ]

    @Test(arguments: cases)
    func everySplitSizeGivesIdenticalEvents(_ c: Case) throws {
        let bytes = try Fixtures.bytes(c.file)
        let reference = decode(c.provider, bytes, cuts: [])
        #expect(!reference.isEmpty)
        for size in 1...bytes.count {
            let events = decode(c.provider, bytes, every: size)
            #expect(events == reference, "split size \(size)")
            if events != reference { break }
        }
        var rng = SplitMix(state: 42)
        for _ in 0..<300 {
            let count = Int.random(in: 1...40, using: &rng)
            let cuts = (0..<count).map { _ in Int.random(in: 0...bytes.count, using: &rng) }.sorted()
            let events = decode(c.provider, bytes, cuts: cuts)
            #expect(events == reference, "cuts \(cuts)")
            if events != reference { break }
        }
    }

    @Test func openAIFixture() throws {
        let events = decode(.openai, try Fixtures.bytes("openai-stream.txt"), cuts: [])
        #expect(text(of: events) == "Hello! How can I help you today?")
        #expect(Array(events.suffix(3)) == [
            .finish(FinishReason(.stop, raw: "stop")),
            .usage(Usage(promptTokens: 19, completionTokens: 74, totalTokens: 93)),
            .done,
        ])
        #expect(events.count == 9 + 3)
    }

    @Test func anthropicFixture() throws {
        let events = decode(.anthropic, try Fixtures.bytes("anthropic-stream.txt"), cuts: [])
        #expect(events == [
            .text("Hello"),
            .text("! I'm doing well, thank you for asking"),
            .text(". How can I help you today?"),
            .finish(FinishReason(.stop, raw: "end_turn")),
            .usage(Usage(promptTokens: 21, completionTokens: 20, totalTokens: 41)),
            .done,
        ])
    }

    @Test func anthropicErrorFixture() throws {
        let events = decode(.anthropic, try Fixtures.bytes("anthropic-error-stream.txt"), cuts: [])
        #expect(text(of: events) == "Once upon a time, in a quiet village by the sea, there lived")
        guard case .error(let error)? = events.last else {
            Issue.record("expected a final error, got \(events)")
            return
        }
        #expect(error.kind == .overloaded)
        #expect(error.apiType == "overloaded")
        #expect(error.providerType == "overloaded_error")
        #expect(error.message == "Overloaded")
        #expect(!events.contains(.done))
    }

    @Test func geminiFixture() throws {
        let events = decode(.gemini, try Fixtures.bytes("gemini-stream.txt"), cuts: [])
        #expect(events == [
            .text("Hello! I'm doing well, thank you"),
            .text(" for asking. How can I help you today?"),
            .finish(FinishReason(.stop, raw: "STOP")),
            .usage(Usage(promptTokens: 9, completionTokens: 129, totalTokens: 138)),
            .done,
        ])
    }

    @Test(arguments: cases)
    func truncatedStreamsAreIncompleteNeverDone(_ c: Case) throws {
        let bytes = try Fixtures.bytes(c.file)
        let full = decode(c.provider, bytes, cuts: [])
        for cut in 0..<bytes.count {
            let events = decode(c.provider, Array(bytes[0..<cut]), cuts: [])
            guard let last = events.last else {
                Issue.record("no terminal event at cut \(cut)")
                break
            }
            // Gemini has no terminator: once the finishReason event is complete, the body may end.
            if last == .done {
                #expect(c.provider == .gemini || full.last == .done, "cut \(cut)")
                continue
            }
            guard case .error(let error) = last else {
                Issue.record("cut \(cut): last event \(last)")
                break
            }
            if full.last == .done {
                #expect(error.kind == .upstreamIncomplete || error.kind == .malformed, "cut \(cut)")
            }
        }
    }
}
