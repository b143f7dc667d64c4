import HTTP
import JSONCore
import Providers
import Reactor

/// OpenAI's Chat Completions framing (docs/wire-formats.md §2): `chat.completion.chunk` objects with one
/// id and `created` per answer, a role chunk first, content deltas, a finish chunk, the usage
/// chunk (`choices: []`) only when asked for, then `data: [DONE]`. A failure mid-stream is a
/// `data: {"error": …}` event and the stream ends with no `[DONE]` after it.
struct OpenAIWire: ClientWire {
    let isStreaming: Bool
    let includeUsage: Bool
    let id: String
    let created: Int64
    let model: String
    /// What every chunk of this answer starts with (id, created and model do not change within
    /// it), followed by a content delta's opening: encoded once per answer, not once per token.
    /// The first `prefixCount` bytes are the chunk prefix alone.
    private let tokenHead: [UInt8]
    private let prefixCount: Int

    /// `id` is fixed only by tests (golden chunk sequences); answers get a fresh random one.
    init(stream: Bool, includeUsage: Bool, model: String, created: Int64, id: String? = nil) {
        isStreaming = stream
        self.includeUsage = includeUsage
        self.model = model
        self.created = created
        let id = id ?? "chatcmpl-" + APIKeys.hex(SecureRandom.bytes(12))
        self.id = id
        var head: [UInt8] = []
        if stream {
            head.append(contentsOf: "data: ".utf8)
            Self.appendOpening(object: "chat.completion.chunk", id: id, created: created, model: model, to: &head)
            head.append(contentsOf: #","system_fingerprint":null,"choices":"#.utf8)
        }
        prefixCount = head.count
        if stream { head.append(contentsOf: #"[{"index":0,"delta":{"content":"#.utf8) }
        // Copied to its exact size: grown by appends, the array had up to twice the room, held
        // for as long as the stream is open.
        tokenHead = head.withUnsafeBufferPointer { Array($0) }
    }

    func streamHeaders() -> HTTPHeaders { Self.sseHeaders() }

    /// `{"id":…,"object":…,"created":…,"model":…`: how a chunk and a whole response both open.
    private static func appendOpening(object: StaticString, id: String, created: Int64, model: String, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"id":""#.utf8)
        out.append(contentsOf: id.utf8)
        out.append(contentsOf: #"","object":""#.utf8)
        out.append(contentsOf: UnsafeBufferPointer(start: object.utf8Start, count: object.utf8CodeUnitCount))
        out.append(contentsOf: #"","created":"#.utf8)
        JSON.appendInt(created, to: &out)
        out.append(contentsOf: #","model":"#.utf8)
        JSON.appendString(model, to: &out)
    }

    private func chunkPrefix(into out: inout [UInt8]) {
        tokenHead.withUnsafeBufferPointer { out.append(contentsOf: $0[..<prefixCount]) }
    }

    private func chunkSuffix(into out: inout [UInt8]) {
        if includeUsage { out.append(contentsOf: #","usage":null"#.utf8) }
        out.append(contentsOf: "}\n\n".utf8)
    }

    /// A content delta's close, the chunk's suffix included, with and without `include_usage`.
    private static let tokenTail = Array(#"},"logprobs":null,"finish_reason":null}]}"#.utf8) + Array("\n\n".utf8)
    private static let tokenTailWithUsage = Array(#"},"logprobs":null,"finish_reason":null}],"usage":null}"#.utf8) + Array("\n\n".utf8)

    mutating func start(_ o: TurnOutcome, into out: inout [UInt8]) {
        chunkPrefix(into: &out)
        out.append(contentsOf: #"[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]"#.utf8)
        chunkSuffix(into: &out)
    }

    mutating func token(_ text: String, into out: inout [UInt8]) {
        out.append(contentsOf: tokenHead)
        JSON.appendString(text, to: &out)
        out.append(contentsOf: includeUsage ? OpenAIWire.tokenTailWithUsage : OpenAIWire.tokenTail)
    }

    mutating func finish(_ o: TurnOutcome, into out: inout [UInt8]) {
        chunkPrefix(into: &out)
        out.append(contentsOf: #"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"#.utf8)
        JSON.appendString(o.finish?.value ?? "stop", to: &out)
        out.append(contentsOf: "}]".utf8)
        chunkSuffix(into: &out)
        if includeUsage {
            chunkPrefix(into: &out)
            out.append(contentsOf: "[],".utf8)
            appendUsage(o.usage, into: &out)
            out.append(contentsOf: "}\n\n".utf8)
        }
        out.append(contentsOf: "data: [DONE]\n\n".utf8)
    }

    private func appendUsage(_ u: Usage?, into out: inout [UInt8]) {
        let u = u ?? Usage(promptTokens: 0, completionTokens: 0, totalTokens: 0)
        out.append(contentsOf: #""usage":{"prompt_tokens":"#.utf8)
        JSON.appendInt(Int64(u.promptTokens), to: &out)
        out.append(contentsOf: #","completion_tokens":"#.utf8)
        JSON.appendInt(Int64(u.completionTokens), to: &out)
        out.append(contentsOf: #","total_tokens":"#.utf8)
        JSON.appendInt(Int64(u.totalTokens), to: &out)
        out.append(contentsOf: "}".utf8)
    }

    mutating func streamError(_ e: ProviderError, into out: inout [UInt8]) {
        out.append(contentsOf: "data: ".utf8)
        out.append(contentsOf: OpenAIWire.errorBody(e.message, type: OpenAIWire.errorType(e.httpStatus), param: e.param, code: e.apiType))
        out.append(contentsOf: "\n\n".utf8)
    }

    func errorResponse(_ e: ProviderError) -> (status: Int, headers: HTTPHeaders, body: [UInt8]) {
        (e.httpStatus, Self.retryHeaders(e), OpenAIWire.errorBody(e.message, type: OpenAIWire.errorType(e.httpStatus), param: e.param, code: e.apiType))
    }

    func completeResponse(_ o: TurnOutcome, text: String) -> [UInt8] {
        var out: [UInt8] = []
        Self.appendOpening(object: "chat.completion", id: id, created: created, model: model, to: &out)
        out.append(contentsOf: #","choices":[{"index":0,"message":{"role":"assistant","content":"#.utf8)
        JSON.appendString(text, to: &out)
        out.append(contentsOf: #","refusal":null},"logprobs":null,"finish_reason":"#.utf8)
        JSON.appendString(o.finish?.value ?? "stop", to: &out)
        out.append(contentsOf: "}],".utf8)
        appendUsage(o.usage, into: &out)
        out.append(contentsOf: #","system_fingerprint":null}"#.utf8)
        return out
    }

    /// OpenAI's error object; its SDKs pick the exception class from the HTTP status.
    static func errorBody(_ message: String, type: String, param: String?, code: String?) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.key("error")
        w.beginObject()
        w.field("message", message)
        w.field("type", type)
        w.field("param", param)
        w.field("code", code)
        w.endObject()
        w.endObject()
        return w.bytes
    }

    static func errorType(_ status: Int) -> String {
        switch status {
        case 400, 404, 413, 415: return "invalid_request_error"
        case 401: return "authentication_error"
        case 403: return "permission_error"
        case 429: return "rate_limit_error"
        case 503: return "service_unavailable_error"
        default: return "api_error"
        }
    }
}
