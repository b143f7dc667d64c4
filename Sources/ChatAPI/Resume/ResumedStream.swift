import HTTP
import JSONCore
import Reactor
import Storage

/// One client following an answer from a position (`GET /api/v1/messages/{id}/stream`): the text
/// it missed first, as one `token` event, then each new piece as it comes, then `done` or `error`.
/// Every event's id is `<message id>:<characters>` like the original stream's, so a client that
/// drops again resumes again. A follower never pauses the answer for others: one that stops
/// reading is cut off by its connection's output limit (4 MiB), and its client resumes from its
/// last id.
final class ResumedStream {
    let responder: HTTPResponder
    let messageID: String
    /// Characters (Unicode scalars) of the answer this client has.
    private(set) var characters: Int
    private(set) var ended = false
    private var pingTimer: TimerID?
    private let loop: EventLoop
    private let pingSeconds: Double
    /// Told once when the stream ends, however it ends.
    var onEnd: ((ResumedStream) -> Void)?

    init(responder: HTTPResponder, messageID: String, characters: Int, loop: EventLoop, pingSeconds: Double) {
        self.responder = responder
        self.messageID = messageID
        self.characters = characters
        self.loop = loop
        self.pingSeconds = pingSeconds
    }

    func begin() {
        responder.onClientGone = { [weak self] in self?.end(writeClosing: nil) }
        responder.beginStream(status: 200, headers: NativeWire.sseHeaders())
        schedulePing()
    }

    /// Sends whatever of `text` (the answer so far) lies beyond this client's position.
    func catchUp(to text: String) {
        guard !ended else { return }
        let scalars = text.unicodeScalars
        guard scalars.count > characters else { return }
        let rest = String(String.UnicodeScalarView(scalars.dropFirst(characters)))
        send(rest, scalarCount: scalars.count - characters)
    }

    /// A new piece of the answer, `scalarCount` characters long.
    func send(_ piece: String, scalarCount: Int) {
        guard !ended, !piece.isEmpty else { return }
        characters += scalarCount
        var out: [UInt8] = []
        Self.frameHead("token", messageID, characters, into: &out)
        out.append(contentsOf: #"{"text":"#.utf8)
        JSON.appendString(piece, to: &out)
        out.append(contentsOf: "}\n\n".utf8)
        responder.write(out)
    }

    /// The answer started over on another deployment: so does this client's position.
    func restart(reason: String, type: String, model: String, deployment: String) {
        guard !ended else { return }
        characters = 0
        var out: [UInt8] = []
        Self.frameHead("restart", messageID, 0, into: &out)
        var w = JSONWriter(appendingTo: out)
        w.beginObject()
        w.field("reason", reason)
        w.field("type", type)
        w.field("model", model)
        w.field("deployment", deployment)
        w.endObject()
        out = w.bytes
        out.append(contentsOf: "\n\n".utf8)
        responder.write(out)
    }

    /// The answer has ended as `a` says: `done`, or `error` (failed, cancelled, interrupted).
    func finish(_ a: AnswerProgress) {
        guard !ended else { return }
        catchUp(to: a.content)
        var out: [UInt8] = []
        switch a.status {
        case .complete:
            Self.frameHead("done", messageID, characters, into: &out)
            var w = JSONWriter(appendingTo: out)
            w.beginObject()
            w.field("message_id", a.id)
            w.field("conversation_id", a.conversationID)
            w.field("finish_reason", a.finishReason)
            w.usage(a.usage.map { ($0.promptTokens, $0.completionTokens, $0.totalTokens) })
            w.field("ttft_ms", a.ttftMs)
            w.field("latency_ms", a.latencyMs ?? 0)
            w.field("model", a.model)
            w.field("deployment", a.deployment)
            w.field("resumed", true)
            w.endObject()
            out = w.bytes
        case .streaming:
            return
        case .error, .cancelled, .interrupted:
            Self.frameHead("error", messageID, characters, into: &out)
            let (type, message) = Self.describe(a)
            var w = JSONWriter(appendingTo: out)
            w.beginObject()
            w.key("error")
            w.beginObject()
            w.field("type", type)
            w.field("message", message)
            w.endObject()
            w.endObject()
            out = w.bytes
        }
        out.append(contentsOf: "\n\n".utf8)
        end(writeClosing: out)
    }

    static func describe(_ a: AnswerProgress) -> (type: String, message: String) {
        switch a.status {
        case .interrupted: return ("interrupted", "the instance generating this answer stopped before it ended; the text so far is all there is")
        case .cancelled: return ("cancelled", "the answer was cancelled before it ended")
        default: return ("upstream_error", a.error ?? "the answer failed")
        }
    }

    /// Ends the response (with `closing` as its last frame, when the client is still there).
    func end(writeClosing closing: [UInt8]?) {
        guard !ended else { return }
        ended = true
        if let t = pingTimer { loop.cancel(t); pingTimer = nil }
        responder.onClientGone = nil
        if responder.isClientConnected {
            if let closing { responder.write(closing) }
            responder.endStream()
        }
        onEnd?(self)
        onEnd = nil
    }

    private func schedulePing() {
        pingTimer = loop.schedule(afterSeconds: pingSeconds) { [weak self] in
            guard let self, !self.ended else { return }
            self.responder.write(Array(": ping\n\n".utf8))
            self.schedulePing()
        }
    }

    static func frameHead(_ event: String, _ messageID: String, _ characters: Int, into out: inout [UInt8]) {
        out.append(contentsOf: "id: ".utf8)
        out.append(contentsOf: messageID.utf8)
        out.append(UInt8(ascii: ":"))
        JSON.appendInt(Int64(characters), to: &out)
        out.append(contentsOf: "\nevent: ".utf8)
        out.append(contentsOf: event.utf8)
        out.append(contentsOf: "\ndata: ".utf8)
    }
}
