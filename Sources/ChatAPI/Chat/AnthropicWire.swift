import HTTP
import JSONCore
import Providers
import Reactor

/// Anthropic's Messages framing (docs/wire-formats.md §3.3, §3.5, §3.6), so Anthropic SDKs read any
/// model's answer as Claude's: `message_start`, `content_block_start`, `ping`, one
/// `content_block_delta` per text delta, `content_block_stop`, `message_delta` (stop reason and
/// usage), `message_stop`. A failure mid-stream is an `error` event and nothing after it, as
/// Anthropic ends its own streams. `canRestart` stays false: the format has no restart event.
struct AnthropicWire: ClientWire {
    let isStreaming: Bool
    let id: String
    /// The model name the client sent, whichever model ends up answering (fallbacks included).
    let model: String

    /// `id` is fixed only by tests (golden event sequences); answers get a fresh random one.
    init(stream: Bool, model: String, id: String? = nil) {
        isStreaming = stream
        self.model = model
        self.id = id ?? "msg_" + APIKeys.hex(SecureRandom.bytes(12))
    }

    func streamHeaders() -> HTTPHeaders { Self.sseHeaders() }

    /// `event: NAME` and `data: ` of one frame; the caller appends the JSON and `\n\n`.
    private func frameHead(_ name: String, into out: inout [UInt8]) {
        out.append(contentsOf: "event: ".utf8)
        out.append(contentsOf: name.utf8)
        out.append(contentsOf: "\ndata: ".utf8)
    }

    mutating func start(_ o: TurnOutcome, into out: inout [UInt8]) {
        frameHead("message_start", into: &out)
        out.append(contentsOf: #"{"type":"message_start","message":{"id":""#.utf8)
        out.append(contentsOf: id.utf8)
        out.append(contentsOf: #"","type":"message","role":"assistant","model":"#.utf8)
        JSON.appendString(model, to: &out)
        out.append(contentsOf: #","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":"#.utf8)
        // Providers other than Anthropic report input tokens only at the end: message_delta repeats them.
        JSON.appendInt(Int64(o.usage?.promptTokens ?? 0), to: &out)
        out.append(contentsOf: #","output_tokens":0}}}"#.utf8)
        out.append(contentsOf: "\n\n".utf8)
        frameHead("content_block_start", into: &out)
        out.append(contentsOf: #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#.utf8)
        out.append(contentsOf: "\n\n".utf8)
        frameHead("ping", into: &out)
        out.append(contentsOf: #"{"type":"ping"}"#.utf8)
        out.append(contentsOf: "\n\n".utf8)
    }

    mutating func token(_ text: String, into out: inout [UInt8]) {
        frameHead("content_block_delta", into: &out)
        out.append(contentsOf: #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"#.utf8)
        JSON.appendString(text, to: &out)
        out.append(contentsOf: "}}\n\n".utf8)
    }

    mutating func finish(_ o: TurnOutcome, into out: inout [UInt8]) {
        frameHead("content_block_stop", into: &out)
        out.append(contentsOf: #"{"type":"content_block_stop","index":0}"#.utf8)
        out.append(contentsOf: "\n\n".utf8)
        frameHead("message_delta", into: &out)
        out.append(contentsOf: #"{"type":"message_delta","delta":{"stop_reason":"#.utf8)
        JSON.appendString(Self.stopReason(o.finish), to: &out)
        out.append(contentsOf: #","stop_sequence":null},"usage":{"#.utf8)
        if let u = o.usage {
            out.append(contentsOf: #""input_tokens":"#.utf8)
            JSON.appendInt(Int64(u.promptTokens), to: &out)
            out.append(contentsOf: ",".utf8)
        }
        out.append(contentsOf: #""output_tokens":"#.utf8)
        JSON.appendInt(Int64(o.usage?.completionTokens ?? 0), to: &out)
        out.append(contentsOf: "}}\n\n".utf8)
        frameHead("message_stop", into: &out)
        out.append(contentsOf: #"{"type":"message_stop"}"#.utf8)
        out.append(contentsOf: "\n\n".utf8)
    }

    mutating func streamError(_ e: ProviderError, into out: inout [UInt8]) {
        frameHead("error", into: &out)
        out.append(contentsOf: Self.errorBody(Self.errorType(Self.status(e)), message: Self.message(e.message, param: e.param)))
        out.append(contentsOf: "\n\n".utf8)
    }

    func errorResponse(_ e: ProviderError) -> (status: Int, headers: HTTPHeaders, body: [UInt8]) {
        let status = Self.status(e)
        return (status, Self.retryHeaders(e), Self.errorBody(Self.errorType(status), message: Self.message(e.message, param: e.param)))
    }

    func completeResponse(_ o: TurnOutcome, text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.append(contentsOf: #"{"id":""#.utf8)
        out.append(contentsOf: id.utf8)
        out.append(contentsOf: #"","type":"message","role":"assistant","model":"#.utf8)
        JSON.appendString(model, to: &out)
        out.append(contentsOf: #","content":[{"type":"text","text":"#.utf8)
        JSON.appendString(text, to: &out)
        out.append(contentsOf: #"}],"stop_reason":"#.utf8)
        JSON.appendString(Self.stopReason(o.finish), to: &out)
        out.append(contentsOf: #","stop_sequence":null,"usage":{"input_tokens":"#.utf8)
        JSON.appendInt(Int64(o.usage?.promptTokens ?? 0), to: &out)
        out.append(contentsOf: #","output_tokens":"#.utf8)
        JSON.appendInt(Int64(o.usage?.completionTokens ?? 0), to: &out)
        out.append(contentsOf: "}}".utf8)
        return out
    }

    /// Our normalized finish in Anthropic's vocabulary; an answer whose provider named no
    /// reason ended normally as far as anyone can tell.
    static func stopReason(_ f: FinishReason?) -> String {
        guard let f else { return "end_turn" }
        switch f.normalized {
        case .length: return "max_tokens"
        case .contentFilter: return "refusal"
        case .toolCalls: return "tool_use"
        case .stop: return "end_turn"
        }
    }

    /// A provider's overload is Anthropic's own 529 here, so SDKs treat it as `OverloadedError`.
    static func status(_ e: ProviderError) -> Int {
        e.kind == .overloaded ? 529 : e.httpStatus
    }

    /// Anthropic's `error.type` for an HTTP status (docs/wire-formats.md §3.5.2).
    static func errorType(_ status: Int) -> String {
        switch status {
        case 400, 415: return "invalid_request_error"
        case 401: return "authentication_error"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 413: return "request_too_large"
        case 429: return "rate_limit_error"
        case 503, 529: return "overloaded_error"
        case 504: return "timeout_error"
        default: return "api_error"
        }
    }

    /// Anthropic's messages start with the field at fault (`max_tokens: Field required`); its
    /// error object has no separate `param`.
    static func message(_ message: String, param: String?) -> String {
        guard let param, !message.hasPrefix(param) else { return message }
        return param + ": " + message
    }

    /// `{"type":"error","error":{"type":…,"message":…}}`, compact as Anthropic sends it.
    static func errorBody(_ type: String, message: String) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.field("type", "error")
        w.key("error")
        w.beginObject()
        w.field("type", type)
        w.field("message", message)
        w.endObject()
        w.endObject()
        return w.bytes
    }
}
