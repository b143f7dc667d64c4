import HTTP
import Reactor

/// One streamed mock answer: paces the events of a wire format on loop timers, honours the
/// client's backpressure, injects the requested fault, and stops everything if the client leaves.
final class MockStream {
    private let responder: HTTPResponder
    private let loop: EventLoop
    private let format: MockWireFormat
    private let d: MockDirectives
    private let model: String
    private let promptTokens: Int
    private let echoTokens: [String]?
    private var sent = 0
    private var timer: TimerID?
    private var pieces: [[UInt8]] = []
    private var waitingForWritable = false
    private var finished = false
    private var closing = false
    private var stopped = false
    /// xorshift64 state for `jitter`, seeded per stream (never 0).
    private var jitterState = monotonicNanos() | 1
    private let onDone: () -> Void
    /// Called when a `reset` fault drops the connection, so the log can tell it from a client
    /// that left.
    var onReset: (() -> Void)?

    init(responder: HTTPResponder, loop: EventLoop, format: MockWireFormat, directives: MockDirectives,
         model: String, promptTokens: Int, onDone: @escaping () -> Void) {
        self.responder = responder
        self.loop = loop
        self.format = format
        self.d = directives
        self.model = model
        self.promptTokens = promptTokens
        self.onDone = onDone
        echoTokens = directives.echo.map(MockStream.splitWords)
    }

    private var total: Int { echoTokens?.count ?? d.tokens }

    func start() {
        responder.onClientGone = { [weak self] in self?.stop() }
        responder.onWritabilityChanged = { [weak self] writable in
            guard let self, writable, self.waitingForWritable else { return }
            self.waitingForWritable = false
            self.step()
        }
        var h = HTTPHeaders()
        h.add("Content-Type", format.contentType)
        h.add("Cache-Control", "no-cache")
        h.add(format.requestIDHeader, "req_mock_\(monotonicNanos())")
        responder.beginStream(status: 200, headers: h)
        if d.fault == .hang { return }  // headers, then silence until the client gives up
        guard d.silenceMs > 0 else { return begin() }
        timer = loop.schedule(afterNanos: UInt64(d.silenceMs * 1e6)) { [weak self] in
            self?.timer = nil
            self?.begin()
        }
    }

    private func begin() {
        for p in format.preamble(model: model, promptTokens: promptTokens) { emit(p) }
        schedule(afterMs: d.firstDelayMs)
    }

    /// Splits text into word-ish tokens whose concatenation is the text.
    static func splitWords(_ text: String) -> [String] {
        var out: [String] = []
        var cur = ""
        for ch in text {
            if ch == " " && !cur.isEmpty { out.append(cur); cur = "" }
            cur.append(ch)
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }

    private func schedule(afterMs ms: Double) {
        if ms <= 0 && pieces.isEmpty {
            step()
        } else {
            timer = loop.schedule(afterNanos: UInt64(max(ms, pieces.isEmpty ? 0 : 1) * 1e6)) { [weak self] in
                self?.timer = nil
                self?.step()
            }
        }
    }

    private func step() {
        guard !finished else { return }
        if !pieces.isEmpty {
            responder.write(pieces.removeFirst())
            if pieces.isEmpty && closing { finishStream() } else { schedule(afterMs: pieces.isEmpty ? nextGapMs() : 1) }
            return
        }
        if closing {
            finishStream()
            return
        }
        // With no delay, send a burst but let the client's backpressure stop us.
        repeat {
            guard responder.isWritable else {
                waitingForWritable = true
                return
            }
            if sent == total || (d.fault != nil && sent == d.after) {
                end()
                return
            }
            let text = echoTokens?[sent] ?? MockText.token(sent, stamp: d.stamp, nowNanos: monotonicNanos())
            emit(format.token(text, index: sent, model: model, promptTokens: promptTokens))
            sent += 1
        } while d.delayMs <= 0 && pieces.isEmpty && !finished
        schedule(afterMs: nextGapMs())
    }

    /// The wait before the next token: `delay`, moved by up to ±`jitter` (xorshift: no syscall per token).
    private func nextGapMs() -> Double {
        guard d.jitterMs > 0 else { return d.delayMs }
        jitterState ^= jitterState << 13
        jitterState ^= jitterState >> 7
        jitterState ^= jitterState << 17
        let unit = Double(jitterState >> 11) / Double(1 << 53)  // [0, 1)
        return max(0, d.delayMs + (unit * 2 - 1) * d.jitterMs)
    }

    private func emit(_ event: [UInt8]) {
        guard d.split > 0 else {
            responder.write(event)
            return
        }
        var i = 0
        while i < event.count {
            pieces.append(Array(event[i..<min(i + d.split, event.count)]))
            i += d.split
        }
    }

    private func end() {
        switch d.fault {
        case .midstream:
            emit(format.midstreamError())
            closeWhenSent()
        case .reset:
            finished = true
            onReset?()
            // Reset after what was written has left (a reset discards unsent bytes), like a
            // connection that dies mid-answer rather than before it.
            let r = responder
            loop.schedule(afterMillis: 30) { r.abortConnection() }
            stop()
        case .truncate:
            for e in format.ending(model: model, promptTokens: promptTokens, completionTokens: sent, terminated: false) { emit(e) }
            closeWhenSent()
        case .malformed:
            emit(Array("data: {\"choices\":[{\"delta\":{\"content\":\"unterminated\n\n".utf8))
            closeWhenSent()
        default:
            for e in format.ending(model: model, promptTokens: promptTokens, completionTokens: sent, terminated: true) { emit(e) }
            closeWhenSent()
        }
    }

    /// Ends the response once split pieces still queued have gone out.
    private func closeWhenSent() {
        closing = true
        if pieces.isEmpty { finishStream() } else { schedule(afterMs: 1) }
    }

    private func finishStream() {
        finished = true
        responder.endStream()
        stop()
    }

    func stop() {
        guard !stopped else { return }
        stopped = true
        finished = true
        if let t = timer { loop.cancel(t); timer = nil }
        responder.onClientGone = nil
        responder.onWritabilityChanged = nil
        let done = onDone
        done()
    }
}
