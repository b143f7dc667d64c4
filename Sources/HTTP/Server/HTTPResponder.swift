import Reactor

/// The answer slot of one request. Handlers answer once, either with a fixed-length response or
/// a stream (chunked on HTTP/1.1, close-delimited on HTTP/1.0). Everything is a no-op once the
/// client is gone, so a late database callback cannot write to a dead or reused connection.
public final class HTTPResponder {
    public enum State { case pending, streaming, finished }

    /// The request's head. Its header fields are dropped once a stream begins (see `beginStream`).
    public private(set) var head: HTTPRequestHead
    public private(set) var state: State = .pending
    /// Status sent, for the access log.
    public private(set) var status = 0
    /// Body bytes sent (excluding framing), for the access log.
    public private(set) var bytesSent = 0
    /// Called when the output backlog crosses a watermark (false: stop producing; true: go on).
    public var onWritabilityChanged: ((Bool) -> Void)?
    /// Called once if the client goes away before the response finished.
    public var onClientGone: (() -> Void)?
    /// Called once the response is finished or abandoned; the server logs here.
    public var onComplete: ((HTTPResponder) -> Void)?
    /// Headers every response of this request carries (request id, CORS), added by the application.
    public var extraHeaders = HTTPHeaders()
    /// Whatever the application attaches to this request (its log context).
    public var context: AnyObject?
    public let startedAt: UInt64
    /// When the response head went out (0 until then), for Server-Timing and metrics.
    public private(set) var headWrittenAt: UInt64 = 0
    /// Index of the route pattern the path matched (`Router.patterns`), or -1: a bounded label for metrics.
    public var routeIndex = -1
    /// Appends raw header lines ("Name: value\r\n") to the head as it is written: for values that
    /// can only be known then (Server-Timing). Installed per server, like `onComplete`.
    public var onHeadWrite: ((HTTPResponder, inout [UInt8]) -> Void)?

    weak var connection: HTTPServerConnection?
    private var chunked = false
    /// Hex digits of the latest chunk's size line: the next frame of a stream is usually about as
    /// long, so its size line is reserved at this width before the frame is encoded.
    private var chunkWidth = 3

    init(head: HTTPRequestHead, connection: HTTPServerConnection) {
        self.head = head
        self.connection = connection
        startedAt = monotonicNanos()
    }

    public var isClientConnected: Bool { connection?.isOpen ?? false }
    public var isWritable: Bool { connection?.tcp.isWritable ?? false }
    public var loop: EventLoop? { connection?.tcp.loop }

    // MARK: Fixed-length

    public func respond(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        guard state == .pending else { return }
        guard let c = connection, c.isOpen else { abandon(); return }
        state = .finished
        self.status = status
        var h = headers
        for (n, v) in extraHeaders { h.add(n, v) }
        // 204 and 304 carry no body. A 204 must not carry Content-Length, and a 304's may only be
        // the length the 200 would have had (RFC 9110 §8.6), so for a 304 the caller's own stays.
        let bodyless = status == 204 || status == 304
        if !bodyless { h.replaceOrAdd("Content-Length", String(body.count)) }
        let keep = c.shouldKeepAlive(after: head)
        h.replaceOrAdd("Connection", keep ? "keep-alive" : "close")
        let sendBody = head.method != .head && !bodyless
        c.tcp.write { out in
            writeHead(status: status, headers: h, into: &out)
            if sendBody { out.append(contentsOf: body) }
        }
        if sendBody { bytesSent = body.count }
        c.responseFinished(self, keepAlive: keep)
    }

    public func respondJSON(status: Int, _ body: [UInt8], headers: HTTPHeaders = HTTPHeaders()) {
        var h = headers
        h.replaceOrAdd("Content-Type", "application/json")
        respond(status: status, headers: h, body: body)
    }

    public func respondError(status: Int, type: String? = nil, message: String, param: String? = nil, headers: HTTPHeaders = HTTPHeaders()) {
        respondJSON(status: status, ErrorBody.json(type: type ?? ErrorBody.type(forStatus: status), message: message, param: param), headers: headers)
    }

    // MARK: Streaming

    /// Sends the head of a streamed response now, so the client sees headers at once.
    public func beginStream(status: Int = 200, headers: HTTPHeaders) {
        guard state == .pending else { return }
        guard let c = connection, c.isOpen else { abandon(); return }
        state = .streaming
        self.status = status
        var h = headers
        for (n, v) in extraHeaders { h.add(n, v) }
        chunked = head.versionMinor >= 1
        if chunked {
            h.replaceOrAdd("Transfer-Encoding", "chunked")
        } else {
            h.replaceOrAdd("Connection", "close")  // HTTP/1.0: the end of the body is the close
        }
        c.tcp.write { writeHead(status: status, headers: h, into: &$0) }
        // A streamed answer may stay open for minutes with nothing to read meanwhile.
        c.tcp.releaseIdleReadBuffer()
        // Handlers read the request's fields before answering; for the rest of a long stream only
        // the method, path and version are used (framing, the access log).
        head.headers = HTTPHeaders()
        head.target = ""
        extraHeaders = HTTPHeaders()  // written with the head; no second head follows
        if head.method == .head { endStream() }
    }

    /// Serializes the head at the end of `out` (the connection's outbound buffer), letting
    /// `onHeadWrite` add its lines before the blank line.
    private func writeHead(status: Int, headers: HTTPHeaders, into out: inout [UInt8]) {
        headWrittenAt = monotonicNanos()
        HTTPResponseHead(status: status, headers: headers, versionMinor: head.versionMinor).serialize(into: &out)
        guard let hook = onHeadWrite else { return }
        out.removeLast(2)  // the blank line that ends the head
        hook(self, &out)
        out.append(13)
        out.append(10)
    }

    /// Writes part of a streamed body. Returns false when the client is gone.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { write(bytes: $0) }
    }

    @discardableResult
    public func write(bytes: UnsafeRawBufferPointer) -> Bool {
        guard state == .streaming, let c = connection, c.isOpen else { return false }
        guard bytes.count > 0, head.method != .head else { return true }
        bytesSent += bytes.count
        if chunked {
            c.tcp.write { ChunkedEncoding.appendChunk(bytes, to: &$0) }
        } else {
            c.tcp.write(bytes)
        }
        return true
    }

    /// Writes part of a streamed body that `encode` serializes in place, straight into the
    /// connection's outbound buffer (inside its chunk when chunked): the frame is encoded once,
    /// with no staging array and no copy into a chunk. `encode` must only append. Returns false
    /// when the client is gone (and `encode` is not called).
    @discardableResult
    public func writeFrame(_ encode: (inout [UInt8]) -> Void) -> Bool {
        guard state == .streaming, let c = connection, c.isOpen else { return false }
        guard head.method != .head else { return true }
        if chunked {
            c.tcp.write { out in
                let n = ChunkedEncoding.appendChunk(to: &out, widthHint: chunkWidth, encode)
                if n > 0 {
                    bytesSent += n
                    chunkWidth = ChunkedEncoding.hexWidth(n)
                }
            }
        } else {
            c.tcp.write { out in
                let before = out.count
                encode(&out)
                bytesSent += out.count - before
            }
        }
        return true
    }

    /// Ends a streamed body; the connection goes on to the next request when keep-alive allows.
    public func endStream() {
        guard state == .streaming else { return }
        state = .finished
        guard let c = connection, c.isOpen else { complete(); return }
        if chunked && head.method != .head { ChunkedEncoding.terminator.withUnsafeBytes { c.tcp.write($0) } }
        c.responseFinished(self, keepAlive: chunked && c.shouldKeepAlive(after: head))
    }

    /// Drops the connection with a reset, mid-response (fault injection in the mock upstream).
    public func abortConnection() {
        connection?.tcp.reset()
    }

    // MARK: Lifecycle (called by the connection)

    func clientGone() {
        guard state != .finished else { return }
        state = .finished
        let gone = onClientGone
        onClientGone = nil
        onWritabilityChanged = nil
        gone?()
        complete()
    }

    private func abandon() {
        state = .finished
        complete()
    }

    func complete() {
        let done = onComplete
        onComplete = nil
        onWritabilityChanged = nil
        onClientGone = nil
        done?(self)
    }
}
