import HTTP
import JSONCore
import Providers
import Storage

/// What a finished answer carries, for the closing frame and for storage.
struct TurnOutcome {
    var messageID: String?
    var conversationID: String?
    /// The public model name the client asked for.
    var model: String
    /// The deployment's kind (`openai`, `azure-openai`, …) and its id in the catalog.
    var provider: String
    var deployment: String
    /// Every upstream attempt, in the order they ended.
    var attempts: [AttemptRecord] = []
    var finish: FinishReason?
    var usage: Usage?
    var ttftMs: Int?
    var latencyMs: Int
    /// How the answer ended (`streaming` while it goes on), and what it cost once billed.
    var status: MessageStatus = .streaming
    var costPico: Int64? = nil
    /// Served from the response cache, with no upstream call.
    var cached = false
}

/// How one API surface frames an answer for its clients: ChatRelay's own SSE events
/// (`/api/v1/chat`) or OpenAI's chunks (`/v1/chat/completions`). The turn logic is shared.
protocol ClientWire {
    /// False: the answer is collected and sent as one JSON response at the end.
    var isStreaming: Bool { get }
    func streamHeaders() -> HTTPHeaders
    mutating func start(_ outcome: TurnOutcome, into out: inout [UInt8])
    mutating func token(_ text: String, into out: inout [UInt8])
    mutating func finish(_ outcome: TurnOutcome, into out: inout [UInt8])
    mutating func streamError(_ error: ProviderError, into out: inout [UInt8])
    /// An error before any response bytes: status, headers and body in this surface's error shape.
    func errorResponse(_ error: ProviderError) -> (status: Int, headers: HTTPHeaders, body: [UInt8])
    /// The single response of a non-streamed answer.
    func completeResponse(_ outcome: TurnOutcome, text: String) -> [UInt8]
    /// Whether this surface can tell a client that an answer starts again (`restart` event).
    var canRestart: Bool { get }
    /// The answer so far is void; a new one from `model` follows.
    mutating func restart(_ reason: ProviderError, model: String, deployment: String, into out: inout [UInt8])
}

extension ClientWire {
    var canRestart: Bool { false }
    mutating func restart(_ reason: ProviderError, model: String, deployment: String, into out: inout [UInt8]) {}

    static func sseHeaders() -> HTTPHeaders {
        var h = HTTPHeaders()
        h.add("Content-Type", "text/event-stream")
        h.add("Cache-Control", "no-cache")
        // nginx and similar proxies buffer responses unless told not to.
        h.add("X-Accel-Buffering", "no")
        return h
    }

    static func retryHeaders(_ error: ProviderError) -> HTTPHeaders {
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json")
        if let r = error.retryAfter {
            h.add("Retry-After", String(max(1, Int(r.rounded(.up)))))
        } else if error.httpStatus == 503 || error.httpStatus == 429 {
            h.add("Retry-After", "1")
        }
        return h
    }
}

/// ChatRelay's own events (docs/API.md): `start`, `token`, `done`, `error`, each with an increasing `id:`.
struct NativeWire: ClientWire {
    /// Every event's id is `<message id>:<characters of the answer sent so far>`: what a
    /// reconnecting client's `Last-Event-ID` needs to resume (docs/API.md, "Resuming a stream").
    private let idPrefix: [UInt8]
    private var characters = 0
    let isStreaming = true
    /// For one run of a multi-model turn: its id and model, which every event's data names first
    /// (`runTag` is them pre-encoded as `"run":…,"model":…,`). The turn's `start` and `end` are
    /// the `MultiModelTurn`'s.
    private let run: (id: String, model: String)?
    private let runTag: [UInt8]

    init(messageID: String, run: (id: String, model: String)? = nil) {
        idPrefix = Array("id: \(messageID):".utf8)
        self.run = run
        var tag: [UInt8] = []
        if let run {
            tag.append(contentsOf: #""run":"#.utf8)
            JSON.appendString(run.id, to: &tag)
            tag.append(contentsOf: #","model":"#.utf8)
            JSON.appendString(run.model, to: &tag)
            tag.append(UInt8(ascii: ","))
        }
        runTag = tag
    }

    /// Starts a data object, naming the run first when there is one.
    private func beginData(_ w: inout JSONWriter) {
        w.beginObject()
        if let run {
            w.field("run", run.id)
            w.field("model", run.model)
        }
    }

    func streamHeaders() -> HTTPHeaders { Self.sseHeaders() }

    private func frameHead(_ event: String, into out: inout [UInt8]) {
        out.append(contentsOf: idPrefix)
        JSON.appendInt(Int64(characters), to: &out)
        out.append(contentsOf: "\nevent: ".utf8)
        out.append(contentsOf: event.utf8)
        out.append(contentsOf: "\ndata: ".utf8)
    }

    mutating func start(_ o: TurnOutcome, into out: inout [UInt8]) {
        guard run == nil else { return }
        frameHead("start", into: &out)
        var w = JSONWriter(appendingTo: out)
        w.beginObject()
        if let c = o.conversationID { w.field("conversation_id", c) }
        if let m = o.messageID { w.field("message_id", m) }
        w.field("model", o.model)
        w.field("provider", o.provider)
        w.field("deployment", o.deployment)
        w.endObject()
        out = w.bytes
        out.append(contentsOf: "\n\n".utf8)
    }

    mutating func token(_ text: String, into out: inout [UInt8]) {
        // JSON escaping turns every newline into \n, so the data stays on one line.
        characters += text.unicodeScalars.count
        out.append(contentsOf: idPrefix)
        JSON.appendInt(Int64(characters), to: &out)
        if runTag.isEmpty {
            out.append(contentsOf: NativeWire.tokenHead)
        } else {
            out.append(contentsOf: NativeWire.tokenHeadOpen)
            out.append(contentsOf: runTag)
            out.append(contentsOf: NativeWire.textKey)
        }
        JSON.appendString(text, to: &out)
        out.append(contentsOf: NativeWire.tokenTail)
    }

    /// The constant parts of a token event, encoded once for the process.
    private static let tokenHeadOpen = Array("\nevent: token\ndata: {".utf8)
    private static let textKey = Array(#""text":"#.utf8)
    private static let tokenHead = tokenHeadOpen + textKey
    private static let tokenTail = Array("}\n\n".utf8)

    mutating func finish(_ o: TurnOutcome, into out: inout [UInt8]) {
        frameHead("done", into: &out)
        var w = JSONWriter(appendingTo: out)
        beginData(&w)
        if run != nil { w.field("status", o.status.rawValue) }
        if let m = o.messageID { w.field("message_id", m) }
        if let c = o.conversationID { w.field("conversation_id", c) }
        w.field("finish_reason", o.finish?.value)
        w.usage(o.usage.map { ($0.promptTokens, $0.completionTokens, $0.totalTokens) })
        w.field("cost_usd", o.costPico.map(USD.format))
        if o.cached { w.field("cached", true) }
        w.field("ttft_ms", o.ttftMs)
        w.field("latency_ms", o.latencyMs)
        if run == nil { w.field("model", o.model) }
        w.field("deployment", o.deployment)
        w.key("attempts")
        w.beginArray()
        for a in o.attempts { a.write(&w) }
        w.endArray()
        w.endObject()
        out = w.bytes
        out.append(contentsOf: "\n\n".utf8)
    }

    var canRestart: Bool { true }

    mutating func restart(_ reason: ProviderError, model: String, deployment: String, into out: inout [UInt8]) {
        // The answer starts over: so do the positions.
        characters = 0
        frameHead("restart", into: &out)
        var w = JSONWriter(appendingTo: out)
        w.beginObject()
        if let run { w.field("run", run.id) }
        w.field("reason", reason.message)
        w.field("type", reason.apiType)
        w.field("model", model)
        w.field("deployment", deployment)
        w.endObject()
        out = w.bytes
        out.append(contentsOf: "\n\n".utf8)
    }

    mutating func streamError(_ e: ProviderError, into out: inout [UInt8]) {
        frameHead("error", into: &out)
        let dataStart = out.count
        e.writeStreamErrorData(to: &out)
        if !runTag.isEmpty { out.insert(contentsOf: runTag, at: dataStart + 1) }
        out.append(contentsOf: "\n\n".utf8)
    }

    func errorResponse(_ e: ProviderError) -> (status: Int, headers: HTTPHeaders, body: [UInt8]) {
        var body: [UInt8] = []
        e.writeResponseBody(to: &body)
        return (e.httpStatus, Self.retryHeaders(e), body)
    }

    func completeResponse(_ outcome: TurnOutcome, text: String) -> [UInt8] { [] }
}

extension JSONWriter {
    /// `"usage": {"prompt_tokens", "completion_tokens", "total_tokens"}` (docs/API.md), or null when unknown.
    mutating func usage(_ u: (prompt: Int?, completion: Int?, total: Int?)?) {
        key("usage")
        guard let u else {
            null()
            return
        }
        beginObject()
        field("prompt_tokens", u.prompt)
        field("completion_tokens", u.completion)
        field("total_tokens", u.total)
        endObject()
    }
}
