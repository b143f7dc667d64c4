#if canImport(Glibc)
import Glibc
#endif
import JSONCore
import Providers
import Reactor

/// How one request ended.
enum Outcome: Equatable {
    case ok
    case failed(String)
}

/// Told about a client's requests; the runner.
protocol ClientOwner: AnyObject {
    var stats: RunStats { get }
    var loop: EventLoop { get }
    func clientConnected(_ c: Client)
    func clientFirstToken(_ c: Client)
    func clientFinished(_ c: Client, _ outcome: Outcome, reusable: Bool)
    /// An idle (or connecting) client's connection went away with no request on it.
    func clientGone(_ c: Client)
    func plainResponse(_ c: Client, status: Int, body: [UInt8])
}

/// One keep-alive connection and the request (at most one) running on it.
final class Client: TCPConnectionDelegate {
    enum Kind { case openai, anthropic, chat, plain }
    enum Phase { case connecting, idle, busy, closed }

    let id: Int
    let kind: Kind
    unowned let owner: ClientOwner
    private(set) var conn: TCPConnection?
    private(set) var phase = Phase.connecting
    private var connectStarted: UInt64 = 0
    /// A request queued while connecting.
    private var queuedStart: UInt64?
    private var request: [UInt8] = []

    // The request in flight.
    private(set) var start: UInt64 = 0
    private var firstToken: UInt64 = 0
    private var lastToken: UInt64 = 0
    private(set) var tokens = 0
    private var terminal: Outcome?
    private var parser = HTTPResponseParser()
    private var openai = OpenAIStreamDecoder()
    /// Counts `content_block_delta` text as tokens and ends at `message_stop`, as an Anthropic SDK reads the stream.
    private var anthropic = AnthropicStreamDecoder()
    private var sse = SSEDecoder(maxLineBytes: 256 * 1024)
    private var plainBody: [UInt8] = []
    private var readTime: UInt64 = 0
    /// Status of the response in flight, copied out of the parser when its head is complete.
    private var status = 0
    /// Set by the runner when it closes the socket on purpose (vanish, hard stop).
    var closingOnPurpose = false
    /// The error kind to count when the runner closes a busy client (timeout, aborted), or nil
    /// when the close is the point (hold, vanish).
    var abortKind: String?

    init(id: Int, kind: Kind, owner: ClientOwner) {
        self.id = id
        self.kind = kind
        self.owner = owner
    }

    var hasFirstToken: Bool { firstToken != 0 }

    /// Starts the non-blocking connect. An error is returned, not thrown past the runner.
    func connect(host: String, port: Int) -> SystemError? {
        connectStarted = monotonicNanos()
        do {
            let c = try TCPConnection.connect(loop: owner.loop, host: host, port: port,
                                              limits: TCPConnectionLimits(maxReadBuffer: 64 * 1024, highWater: 64 * 1024, lowWater: 16 * 1024, hardLimit: 1024 * 1024, writeBudget: 256 * 1024)) { [weak self] err in
                self?.connected(err)
            }
            c.delegate = self
            conn = c
            return nil
        } catch {
            phase = .closed
            return error
        }
    }


    private func connected(_ err: SystemError?) {
        guard err == nil else { return }  // connectionDidClose reports it
        owner.stats.connect.record(nanos: monotonicNanos() &- connectStarted)
        owner.stats.connectionsOpened += 1
        phase = .idle
        owner.clientConnected(self)
        if let s = queuedStart, phase == .idle {
            queuedStart = nil
            send(request, start: s)
        }
    }

    /// Sends `bytes` as the next request; `start` is when the request counts as begun (its
    /// intended start in the open loop). While still connecting the request waits for the connect.
    func send(_ bytes: [UInt8], start s: UInt64) {
        request = bytes
        if phase == .connecting {
            queuedStart = s
            start = s
            return
        }
        guard phase == .idle, let conn else { return }
        phase = .busy
        start = s
        firstToken = 0
        lastToken = 0
        tokens = 0
        terminal = nil
        parser.reset()
        status = 0
        openai = OpenAIStreamDecoder()
        anthropic = AnthropicStreamDecoder()
        sse = SSEDecoder(maxLineBytes: 256 * 1024)
        plainBody.removeAll(keepingCapacity: true)
        conn.write(contentsOf: bytes)
    }

    func close(reset: Bool = false) {
        closingOnPurpose = true
        guard let conn else { return }
        if reset { conn.reset() } else { conn.close() }
    }

    // MARK: TCPConnectionDelegate

    func connectionDidRead(_ connection: TCPConnection) {
        guard phase == .busy else {
            // Bytes on an idle keep-alive connection: nothing should come; drop the connection.
            connection.readBuffer.removeAll()
            connection.close()
            return
        }
        readTime = monotonicNanos()
        var failure: ResponseParseError?
        connection.readBuffer.withUnreadBytes { bytes in
            do throws(ResponseParseError) {
                _ = try parser.feed(bytes, onHead: { self.head($0) }, onBody: { self.body($0) })
            } catch {
                failure = error
            }
        }
        connection.readBuffer.removeAll()
        if let failure {
            finish(.failed("protocol"), reusable: false)
            _ = failure
            return
        }
        if parser.isComplete { complete() }
    }

    func connectionReadDidEnd(_ connection: TCPConnection) {
        connection.close(reason: .peerClosed)
    }

    func connectionWritabilityChanged(_ connection: TCPConnection, isWritable: Bool) {}

    func connectionDidClose(_ connection: TCPConnection, reason: CloseReason) {
        let was = phase
        phase = .closed
        conn = nil
        switch was {
        case .connecting:
            if !closingOnPurpose { owner.stats.error("connect") }
            owner.clientGone(self)
            if queuedStart != nil && !closingOnPurpose {
                // The request never went out; it is counted as a connect error, not a result.
                queuedStart = nil
                owner.clientFinished(self, .failed("__connect"), reusable: false)
            }
        case .idle, .closed:
            owner.clientGone(self)
        case .busy:
            if closingOnPurpose {
                owner.clientFinished(self, .failed("__closed"), reusable: false)
            } else if parser.connectionEnded() {
                complete()
            } else {
                finishWithoutConn(.failed(parser.headersDone ? "truncated" : "no_response"))
            }
        }
    }

    // MARK: Response handling

    private func head(_ s: Int) {
        status = s
        owner.stats.ttfb.record(nanos: readTime &- start)
    }

    private func body(_ bytes: UnsafeRawBufferPointer) {
        guard status == 200, terminal == nil else {
            if kind == .plain && plainBody.count + bytes.count <= 64 * 1024 { plainBody.append(contentsOf: bytes) }
            return
        }
        switch kind {
        case .plain:
            if plainBody.count + bytes.count <= 64 * 1024 { plainBody.append(contentsOf: bytes) }
        case .openai:
            openai.feed(bytes) { event in self.providerEvent(event) }
        case .anthropic:
            anthropic.feed(bytes) { event in self.providerEvent(event) }
        case .chat:
            do throws(SSEError) {
                try sse.feed(bytes) { ev in self.chatEvent(ev) }
            } catch {
                terminal = .failed("protocol")
            }
        }
    }

    /// An event of the OpenAI or Anthropic stream, decoded by the gateway's own provider decoders.
    private func providerEvent(_ e: StreamEvent) {
        switch e {
        case .text(let t):
            var s = t
            s.withUTF8 { token(UnsafeRawBufferPointer($0)) }
        case .done: if terminal == nil { terminal = .ok }
        case .error(let pe):
            if terminal == nil {
                let m = pe.message
                let truncated = m.hasSuffix("before [DONE]") || m.hasSuffix("before message_stop")
                terminal = .failed(truncated ? "truncated" : (m.contains("malformed") ? "protocol" : "stream_error"))
            }
        case .usage, .finish: break
        }
    }

    private func chatEvent(_ ev: SSEEventView) {
        if ev.isEvent("token") {
            var s = JSONScanner(ev.data)
            do throws(JSONError) {
                try s.beginObject()
                while let k = try s.nextKey() {
                    if k == "text" {
                        var t = try s.readString()
                        t.withUTF8 { token(UnsafeRawBufferPointer($0)) }
                    } else {
                        try s.skipValue()
                    }
                }
            } catch {
                terminal = .failed("protocol")
            }
        } else if ev.isEvent("done") {
            if terminal == nil { terminal = .ok }
        } else if ev.isEvent("error") {
            if terminal == nil { terminal = .failed("stream_error") }
        }
    }

    private func token(_ text: UnsafeRawBufferPointer) {
        guard terminal == nil else { return }
        let t = readTime
        if firstToken == 0 {
            firstToken = t
            owner.stats.ttft.record(nanos: t &- start)
            owner.clientFirstToken(self)
        } else {
            owner.stats.gap.record(nanos: t &- lastToken)
        }
        lastToken = t
        tokens += 1
        owner.stats.tokens += 1
        forEachStamp(text) { ns in
            owner.stats.stamps += 1
            owner.stats.stampDelay.record(nanos: t > ns ? t - ns : 0)
        }
    }

    /// The HTTP response ended (body complete or close-delimited).
    private func complete() {
        let reusable = parser.keepAlive && parser.isComplete && conn != nil
        if kind == .plain {
            let body = plainBody
            phase = conn == nil ? .closed : .idle
            owner.plainResponse(self, status: parser.status, body: body)
            if !reusable { conn?.close() }
            return
        }
        let outcome: Outcome
        if parser.status != 200 {
            outcome = .failed("http_\(parser.status)")
        } else if let t = terminal {
            outcome = t
        } else {
            if kind == .openai {
                openai.finish { event in self.providerEvent(event) }
            } else if kind == .anthropic {
                anthropic.finish { event in self.providerEvent(event) }
            }
            outcome = terminal ?? .failed("truncated")
        }
        if case .ok = outcome {
            owner.stats.total.record(nanos: readTime &- start)
        }
        finish(outcome, reusable: reusable)
    }

    private func finish(_ outcome: Outcome, reusable: Bool) {
        phase = reusable ? .idle : .closed
        if !reusable, let c = conn {
            closingOnPurpose = true
            conn = nil
            c.delegate = nil
            c.close()
        }
        owner.clientFinished(self, outcome, reusable: reusable)
    }

    private func finishWithoutConn(_ outcome: Outcome) {
        phase = .closed
        owner.clientFinished(self, outcome, reusable: false)
    }
}
