import Reactor

/// One client connection: parses requests, answers them strictly in order (a pipelined request
/// waits in the read buffer until the one before it is answered, as nginx does), runs the
/// header and idle timers, and tells the in-flight responder when the client vanishes.
final class HTTPServerConnection: TCPConnectionDelegate {
    let tcp: TCPConnection
    private unowned let server: HTTPServer
    private var parser: HTTPRequestParser
    private var current: HTTPResponder?
    private var timer: TimerID?
    private var timerIsHeader = false
    private var readEnded = false
    private(set) var isOpen = true
    /// Set during a drain: finish the response in flight, then close.
    var closeAfterCurrent = false
    /// Open when the drain began: the drain ends only once this connection has closed.
    var holdsDrain = false

    init(tcp: TCPConnection, server: HTTPServer) {
        self.tcp = tcp
        self.server = server
        parser = HTTPRequestParser(limits: server.config.parserLimits)
        tcp.delegate = self
        // A new connection owes us a request head: the header deadline runs from accept (as
        // nginx's client_header_timeout does), so a client that connects and sends nothing is
        // dropped after CHAT_HEADER_TIMEOUT_S, not held for the longer idle timeout.
        armHeaderTimer()
    }

    var isIdle: Bool { current == nil && tcp.readBuffer.isEmpty }

    // MARK: Timers

    private func cancelTimer() {
        if let t = timer { tcp.loop.cancel(t); timer = nil }
    }

    /// When the idle timer should close the connection. The timer itself is lazy (nginx-style):
    /// a keep-alive connection answering request after request only moves this deadline, and
    /// the one scheduled timer re-arms itself for the remainder when it fires early. Cancelling
    /// and scheduling a timer per request cost a closure, a dictionary entry and heap work.
    private var idleDeadline: UInt64 = 0

    private var idleNanos: UInt64 { UInt64(max(0, server.config.idleTimeoutSeconds) * 1e9) }

    private func armIdleTimer() {
        idleDeadline = monotonicNanos() &+ idleNanos
        if timer != nil && !timerIsHeader { return }  // the running idle timer fires no later than this
        cancelTimer()
        timerIsHeader = false
        scheduleIdleTimer(afterNanos: idleNanos)
    }

    private func scheduleIdleTimer(afterNanos nanos: UInt64) {
        timer = tcp.loop.schedule(afterNanos: nanos) { [weak self] in self?.idleTimerFired() }
    }

    private func idleTimerFired() {
        timer = nil
        // Busy (a request is being read or answered): the response re-arms the idle timer.
        guard current == nil && parser.isIdle && tcp.readBuffer.isEmpty else { return }
        let now = monotonicNanos()
        if now < idleDeadline {
            scheduleIdleTimer(afterNanos: idleDeadline - now)
            return
        }
        close()
    }

    /// Stops the header timer once a head is complete; a lazy idle timer is left to lapse.
    private func cancelHeaderTimer() {
        if timerIsHeader { cancelTimer() }
    }

    private func armHeaderTimer() {
        cancelTimer()
        timerIsHeader = true
        timer = tcp.loop.schedule(afterSeconds: server.config.headerTimeoutSeconds) { [weak self] in
            guard let self else { return }
            self.timer = nil
            // Slowloris: the head never completed. Drop without a response; it is not worth one.
            self.server.countSlowClient()
            self.close()
        }
    }

    // MARK: Parsing

    func connectionDidRead(_ connection: TCPConnection) {
        processBuffer()
    }

    private func processBuffer() {
        // For the Server-Timing of a refused request: a clock read per read event, not per byte.
        let began = monotonicNanos()
        while isOpen && current == nil && !tcp.readBuffer.isEmpty {
            let (consumed, result) = tcp.readBuffer.withUnreadBytes { parser.parse($0) }
            tcp.readBuffer.consume(consumed)
            switch result {
            case .needMore:
                // Bytes of a head are in: the header deadline runs from the first byte (not per byte).
                if !timerIsHeader || timer == nil { armHeaderTimer() }
                if tcp.readBuffer.count > 0 && consumed == 0 && tcp.readBuffer.count >= server.config.connectionLimits.maxReadBuffer {
                    // The parser wants more than the read buffer may hold: only a body can do that.
                    fail(HTTPParseError(status: 413, message: "request body too large"), began: began)
                }
                if readEnded { close() }
                return
            case .head(let head):
                // The body may take its time, but not forever: a stalled upload is dropped after
                // the idle timeout, like an idle keep-alive connection.
                armIdleTimer()
                if head.expectsContinue && head.versionMinor >= 1 {
                    tcp.write("HTTP/1.1 100 Continue\r\n\r\n")
                }
            case .request(let request):
                cancelHeaderTimer()
                dispatch(request)
            case .failed(let error):
                fail(error, began: began)
                return
            }
        }
        if isOpen && current == nil && readEnded { tcp.closeAfterFlush() }
    }

    private func dispatch(_ request: HTTPRequest) {
        let responder = HTTPResponder(head: request.head, connection: self)
        responder.onComplete = server.onResponseComplete
        responder.onHeadWrite = server.onResponseHead
        current = responder
        server.requestStarted(responder)
        // The next pipelined request waits; stop reading if the buffer is already full of them.
        if server.isDraining {
            server.answerWhileDraining(request, responder)
        } else {
            server.router.handle(request, responder)
        }
        // Still answering (a stream, or a wait for the database): nothing is read until it ends,
        // so the read buffer need not stay allocated meanwhile. A request answered at once keeps
        // it for the next one on this connection.
        if current === responder { tcp.releaseIdleReadBuffer() }
    }

    private func fail(_ error: HTTPParseError, began: UInt64) {
        cancelTimer()
        server.countParseError()
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json")
        h.add("Connection", "close")
        let body = ErrorBody.json(type: ErrorBody.type(forStatus: error.status), message: error.message)
        h.add("Content-Length", String(body.count))
        h.add("Server-Timing", ServerTimingFormat.gatewayOnly(monotonicNanos() &- began))
        var out: [UInt8] = []
        HTTPResponseHead(status: error.status, headers: h, versionMinor: 1).serialize(into: &out)
        out.append(contentsOf: body)
        out.withUnsafeBytes { tcp.write($0) }
        server.logParseFailure(status: error.status, bytes: body.count)
        isOpen = false
        tcp.closeAfterFlush()
    }

    // MARK: Responses

    func shouldKeepAlive(after head: HTTPRequestHead) -> Bool {
        head.keepAlive && !closeAfterCurrent && !readEnded && !server.isDraining
    }

    func responseFinished(_ responder: HTTPResponder, keepAlive: Bool) {
        guard responder === current else { return }
        current = nil
        responder.complete()
        if !keepAlive {
            isOpen = false
            tcp.closeAfterFlush()
            return
        }
        armIdleTimer()
        tcp.resumeReading()
        if !tcp.readBuffer.isEmpty {
            // Answer the next pipelined request after this tick, so responses stay ordered and
            // one connection cannot monopolise the loop.
            tcp.loop.nextTick { [weak self] in self?.processBuffer() }
        }
    }

    // MARK: TCP events

    func connectionReadDidEnd(_ connection: TCPConnection) {
        readEnded = true
        if let r = current, r.state == .streaming || (r.state == .pending && r.onClientGone != nil) {
            // A streaming client that half-closes has gone away (EPOLLRDHUP): tell the owner now.
            // The same holds before the response head for a handler that watches for the client
            // leaving (a chat turn waiting for its first token): it must not wait for a write to fail.
            close()
            return
        }
        if current == nil { processBuffer() }
    }

    func connectionWritabilityChanged(_ connection: TCPConnection, isWritable: Bool) {
        current?.onWritabilityChanged?(isWritable)
    }

    func connectionDidClose(_ connection: TCPConnection, reason: CloseReason) {
        isOpen = false
        cancelTimer()
        let r = current
        current = nil
        r?.clientGone()
        server.connectionClosed(self)
    }

    func close() {
        guard !tcp.isClosed else { return }
        tcp.close(reason: .local)
    }

    /// Drain: idle connections close now; busy ones close after their response. A request whose
    /// bytes are already arriving is read to the end and answered (503, as any request now is).
    func beginDrain() {
        closeAfterCurrent = true
        if current == nil && tcp.readBuffer.isEmpty && parser.isIdle { close() }
    }
}
