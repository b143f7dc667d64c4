import Foundation
import Testing
import Providers
@testable import ChatAPI

/// Golden tests of Anthropic's event sequence on /v1/messages (wire-formats §3.3): each provider's
/// recorded stream in Tests/Fixtures/providers goes through that provider's decoder and
/// ChatRelay's Anthropic framing, the way a turn drives them (message_start, content_block_start
/// and ping when the upstream starts, one content_block_delta per text delta, then
/// content_block_stop, message_delta and message_stop, or an `error` event and nothing after it),
/// with a fixed message id. The bytes must equal Tests/ChatAPITests/golden/anthropic-wire/<name>.txt;
/// `UPDATE_GOLDEN=1` rewrites them.
@Suite struct AnthropicGoldenTests {
    struct Case: Sendable, CustomStringConvertible {
        var fixture: String
        var provider: ProviderKind
        var model: String
        var golden: String
        var description: String { golden }
    }

    static let cases = [
        Case(fixture: "openai-stream.txt", provider: .openai, model: "gpt-5.4-mini", golden: "openai-stream"),
        Case(fixture: "anthropic-stream.txt", provider: .anthropic, model: "claude-sonnet-4-6", golden: "anthropic-stream"),
        Case(fixture: "gemini-stream.txt", provider: .gemini, model: "gemini-2.5-flash", golden: "gemini-stream"),
        Case(fixture: "anthropic-error-stream.txt", provider: .anthropic, model: "claude-sonnet-4-6", golden: "anthropic-error-stream"),
    ]

    static let id = "msg_golden000000000000000000"

    @Test(arguments: cases)
    func eventSequenceMatchesGolden(_ c: Case) throws {
        let input = try GoldenFiles.fixture(c.fixture)
        let produced = Self.relay(input, c, pieceSize: nil).bytes
        let goldenURL = GoldenFiles.golden("anthropic-wire/" + c.golden)
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: goldenURL.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(produced).write(to: goldenURL)
            return
        }
        let expected = Array(try Data(contentsOf: goldenURL))
        #expect(String(decoding: produced, as: UTF8.self) == String(decoding: expected, as: UTF8.self),
                "\(c.golden): run with UPDATE_GOLDEN=1 to rewrite golden/anthropic-wire/\(c.golden).txt if the change is intended")
        // The framing does not depend on how the upstream's bytes were split.
        for size in [1, 7, 64] {
            #expect(Self.relay(input, c, pieceSize: size).bytes == produced, "piece size \(size)")
        }
    }

    /// The order Anthropic's SDKs expect, event by event, with `type` equal to the event name.
    @Test(arguments: cases)
    func eventOrderAndFraming(_ c: Case) throws {
        let text = String(decoding: Self.relay(try GoldenFiles.fixture(c.fixture), c, pieceSize: nil).bytes, as: UTF8.self)
        let frames = text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        var names: [String] = []
        for frame in frames {
            let lines = frame.components(separatedBy: "\n")
            try #require(lines.count == 2, "\(c.golden): one event line and one data line: \(frame)")
            try #require(lines[0].hasPrefix("event: ") && lines[1].hasPrefix("data: "), "\(c.golden): \(frame)")
            let name = String(lines[0].dropFirst("event: ".count))
            let data = try #require(try JSONSerialization.jsonObject(with: Data(lines[1].dropFirst("data: ".count).utf8)) as? [String: Any])
            #expect(data["type"] as? String == name, "\(c.golden): type of \(name)")
            names.append(name)
        }
        let deltas = names.filter { $0 == "content_block_delta" }.count
        #expect(deltas > 0)
        let head = ["message_start", "content_block_start", "ping"]
        if c.fixture.contains("error") {
            #expect(names == head + Array(repeating: "content_block_delta", count: deltas) + ["error"], "\(c.golden): \(names)")
            #expect(frames.last?.contains(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#) == true)
        } else {
            let tail = ["content_block_stop", "message_delta", "message_stop"]
            #expect(names == head + Array(repeating: "content_block_delta", count: deltas) + tail, "\(c.golden): \(names)")
            #expect(text.contains(#""delta":{"stop_reason":"end_turn","stop_sequence":null}"#), "\(c.golden)")
            #expect(text.contains(#""usage":{"input_tokens":"#), "\(c.golden): message_delta repeats the input tokens")
        }
        #expect(frames.first?.contains(#""id":"\#(Self.id)","type":"message","role":"assistant","model":"\#(c.model)","content":[]"#) == true)
    }

    /// A non-streamed answer is one `message` object with the whole text, the same stop reason
    /// and usage as the stream's closing events.
    @Test(arguments: cases.filter { !$0.fixture.contains("error") })
    func nonStreamedMessage(_ c: Case) throws {
        let (_, outcome, text) = Self.relay(try GoldenFiles.fixture(c.fixture), c, pieceSize: nil)
        let wire = AnthropicWire(stream: false, model: c.model, id: Self.id)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(wire.completeResponse(outcome, text: text))) as? [String: Any])
        #expect(Set(json.keys) == ["id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"])
        #expect(json["id"] as? String == Self.id)
        #expect(json["type"] as? String == "message")
        #expect(json["role"] as? String == "assistant")
        #expect(json["model"] as? String == c.model)
        let content = try #require(json["content"] as? [[String: Any]])
        #expect(content.count == 1 && content[0]["type"] as? String == "text" && content[0]["text"] as? String == text)
        #expect(json["stop_reason"] as? String == "end_turn")
        #expect(json["stop_sequence"] is NSNull)
        let usage = try #require(json["usage"] as? [String: Any])
        let u = try #require(outcome.usage)
        #expect(usage["input_tokens"] as? Int == u.promptTokens && usage["output_tokens"] as? Int == u.completionTokens)
    }

    @Test func stopReasonsMapFromTheNormalizedFinish() {
        #expect(AnthropicWire.stopReason(FinishReason(.stop, raw: "STOP")) == "end_turn")
        #expect(AnthropicWire.stopReason(FinishReason(.length, raw: "length")) == "max_tokens")
        #expect(AnthropicWire.stopReason(FinishReason(.contentFilter, raw: "SAFETY")) == "refusal")
        #expect(AnthropicWire.stopReason(FinishReason(.toolCalls, raw: "tool_calls")) == "tool_use")
        #expect(AnthropicWire.stopReason(nil) == "end_turn")
    }

    @Test func errorsTakeAnthropicsStatusesAndTypes() {
        let wire = AnthropicWire(stream: true, model: "m", id: Self.id)
        let cases: [(ProviderError, Int, String)] = [
            (ProviderError(.invalidRequest, "bad", param: "max_tokens"), 400, "invalid_request_error"),
            (ProviderError(.unknownModel, "unknown model 'x'", param: "model"), 400, "invalid_request_error"),
            (ProviderError(.rateLimited, "slow down", retryAfter: 3), 429, "rate_limit_error"),
            (ProviderError(.overloaded, "Overloaded"), 529, "overloaded_error"),
            (ProviderError(.upstreamError, "boom", upstreamStatus: 500), 502, "api_error"),
            (ProviderError(.upstreamTimeout, "late"), 504, "timeout_error"),
        ]
        for (e, status, type) in cases {
            let (s, headers, body) = wire.errorResponse(e)
            #expect(s == status, "\(e)")
            let json = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
            #expect(json?["type"] as? String == "error")
            let error = json?["error"] as? [String: Any]
            #expect(error?["type"] as? String == type, "\(e)")
            #expect(Set(error?.keys.map { $0 } ?? []) == ["type", "message"])
            if let param = e.param { #expect((error?["message"] as? String)?.hasPrefix(param + ": ") == true) }
            if status == 429 { #expect(headers["Retry-After"] == "3") }
            if status == 529 { #expect(headers["Retry-After"] == "1") }
        }
    }

    /// What ChatTurn does with the decoder's events, minus the sockets.
    static func relay(_ input: [UInt8], _ c: Case, pieceSize: Int?) -> (bytes: [UInt8], outcome: TurnOutcome, text: String) {
        var outcome = TurnOutcome(messageID: nil, conversationID: nil, model: c.model, provider: c.provider.rawValue,
                                  deployment: c.provider.rawValue, finish: nil, usage: nil, ttftMs: nil, latencyMs: 0)
        guard let kind = DeploymentKind(rawValue: c.provider.rawValue),
              var decoder = UpstreamRequests.makeStreamDecoder(for: kind) else { return ([], outcome, "") }
        var wire = AnthropicWire(stream: true, model: c.model, id: id)
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
        var text = ""
        wire.start(outcome, into: &out)
        loop: for e in events {
            switch e {
            case .text(let t):
                guard !t.isEmpty else { continue }
                text += t
                wire.token(t, into: &out)
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
        return (out, outcome, text)
    }
}
