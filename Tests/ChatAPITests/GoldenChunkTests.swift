import Foundation
import Testing
import Providers
@testable import ChatAPI

/// Golden tests of the OpenAI-compatible chunk sequence (wire-formats §2.3): each provider's
/// recorded stream in Tests/Fixtures/providers goes through that provider's decoder and ChatRelay's
/// OpenAI framing, the way a turn on /v1/chat/completions drives them (role chunk when the
/// upstream starts, one chunk per text delta, then the finish chunk, the usage chunk and
/// `[DONE]`, or a `data: {"error": …}` event and no `[DONE]`), with a fixed id and `created`.
/// The bytes must equal Tests/ChatAPITests/golden/<name>.txt; `UPDATE_GOLDEN=1` rewrites them.
@Suite struct GoldenChunkTests {
    struct Case: Sendable, CustomStringConvertible {
        var fixture: String
        var provider: ProviderKind
        var model: String
        var includeUsage: Bool
        var golden: String
        var description: String { golden }
    }

    static let cases = [
        Case(fixture: "openai-stream.txt", provider: .openai, model: "gpt-5.4-mini", includeUsage: true, golden: "openai-stream"),
        Case(fixture: "openai-stream.txt", provider: .openai, model: "gpt-5.4-mini", includeUsage: false, golden: "openai-stream-no-usage"),
        Case(fixture: "anthropic-stream.txt", provider: .anthropic, model: "claude-sonnet-4-6", includeUsage: true, golden: "anthropic-stream"),
        Case(fixture: "gemini-stream.txt", provider: .gemini, model: "gemini-2.5-flash", includeUsage: true, golden: "gemini-stream"),
        Case(fixture: "anthropic-error-stream.txt", provider: .anthropic, model: "claude-sonnet-4-6", includeUsage: true,
             golden: "anthropic-error-stream"),
    ]

    static let id = "chatcmpl-golden0000000000000000"
    static let created: Int64 = 1_790_700_378

    @Test(arguments: cases)
    func chunkSequenceMatchesGolden(_ c: Case) throws {
        let input = try GoldenFiles.fixture(c.fixture)
        let produced = Self.relay(input, c, pieceSize: nil)
        let goldenURL = GoldenFiles.golden(c.golden)
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: goldenURL.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(produced).write(to: goldenURL)
            return
        }
        let expected = Array(try Data(contentsOf: goldenURL))
        #expect(String(decoding: produced, as: UTF8.self) == String(decoding: expected, as: UTF8.self),
                "\(c.golden): run with UPDATE_GOLDEN=1 to rewrite golden/\(c.golden).txt if the change is intended")
        // The framing does not depend on how the upstream's bytes were split.
        for size in [1, 7, 64] {
            #expect(Self.relay(input, c, pieceSize: size) == produced, "piece size \(size)")
        }
    }

    @Test func goldenShapes() throws {
        for c in Self.cases {
            let text = String(decoding: Self.relay(try GoldenFiles.fixture(c.fixture), c, pieceSize: nil), as: UTF8.self)
            let events = text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
            #expect(events.allSatisfy { $0.hasPrefix("data: ") && !$0.contains("\n") }, "\(c.golden): data-only, one line each")
            #expect(events.first?.contains(#""delta":{"role":"assistant","content":"","refusal":null}"#) == true, "\(c.golden): role chunk first")
            if c.fixture.contains("error") {
                #expect(events.last?.hasPrefix(#"data: {"error":"#) == true)
                #expect(!text.contains("[DONE]"))
            } else {
                #expect(events.last == "data: [DONE]")
                #expect(events.contains { $0.contains(#""finish_reason":"stop""#) })
                #expect(events.contains { $0.contains(#""choices":[],"usage":{"#) } == c.includeUsage)
            }
        }
    }

    /// What ChatTurn does with the decoder's events, minus the sockets.
    static func relay(_ input: [UInt8], _ c: Case, pieceSize: Int?) -> [UInt8] {
        guard let kind = DeploymentKind(rawValue: c.provider.rawValue),
              var decoder = UpstreamRequests.makeStreamDecoder(for: kind) else { return [] }
        var wire = OpenAIWire(stream: true, includeUsage: c.includeUsage, model: c.model, created: created, id: id)
        var events: [StreamEvent] = []
        let size = pieceSize ?? max(1, input.count)
        var start = 0
        while start < input.count {
            let end = min(input.count, start + size)
            input[start..<end].withUnsafeBytes { decoder.feed($0) { events.append($0) } }
            start = end
        }
        decoder.finish { events.append($0) }

        var out: [UInt8] = []
        var outcome = TurnOutcome(messageID: nil, conversationID: nil, model: c.model, provider: c.provider.rawValue,
                                  deployment: c.provider.rawValue, finish: nil, usage: nil, ttftMs: nil, latencyMs: 0)
        wire.start(outcome, into: &out)
        loop: for e in events {
            switch e {
            case .text(let t):
                if !t.isEmpty { wire.token(t, into: &out) }
            case .usage(let u):
                outcome.usage = u
            case .finish(let f):
                outcome.finish = f
            case .done:
                wire.finish(outcome, into: &out)
                break loop
            case .error(let err):
                wire.streamError(err, into: &out)
                break loop
            }
        }
        return out
    }
}

enum GoldenFiles {
    /// Tests/ChatAPITests/ of this checkout.
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    /// The recorded provider streams (Tests/Fixtures/providers).
    static let fixtures = testsDirectory.appendingPathComponent("../Fixtures/providers").standardizedFileURL

    static func fixture(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    static func golden(_ name: String) -> URL {
        testsDirectory.appendingPathComponent("golden").appendingPathComponent(name + ".txt")
    }
}
