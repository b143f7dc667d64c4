import Foundation
import Providers

enum Fixtures {
    static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/providers")
        .standardizedFileURL

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(name)))
    }
}

func makeDecoder(_ provider: ProviderKind) -> any ProviderStreamDecoder {
    switch provider {
    case .openai: return OpenAIStreamDecoder()
    case .anthropic: return AnthropicStreamDecoder()
    default: return GeminiStreamDecoder()
    }
}

/// Feeds `bytes` in pieces cut at `cuts` (sorted offsets) and returns all events, `finish` included.
func decode(_ provider: ProviderKind, _ bytes: [UInt8], cuts: [Int]) -> [StreamEvent] {
    var decoder = makeDecoder(provider)
    var events: [StreamEvent] = []
    var start = 0
    for cut in cuts + [bytes.count] where cut >= start {
        bytes[start..<cut].withUnsafeBytes { decoder.feed($0) { events.append($0) } }
        start = cut
    }
    decoder.finish { events.append($0) }
    return events
}

func decode(_ provider: ProviderKind, _ bytes: [UInt8], every size: Int) -> [StreamEvent] {
    decode(provider, bytes, cuts: Array(stride(from: size, to: bytes.count, by: size)))
}

func decode(_ provider: ProviderKind, _ text: String) -> [StreamEvent] {
    decode(provider, Array(text.utf8), cuts: [])
}

/// Deterministic pseudo-random generator, so a failing random split can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

func text(of events: [StreamEvent]) -> String {
    events.map { if case .text(let t) = $0 { return t } else { return "" } }.joined()
}
