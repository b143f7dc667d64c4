#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Synchronization

/// Deterministic body piece `i` of a `/stream` response: "<id>.<i>:" padded with a letter to `size`.
func testPiece(_ i: Int, size: Int, id: String = "") -> [UInt8] {
    var p = Array("\(id).\(i):".utf8)
    let letter = UInt8(ascii: "a") + UInt8(i % 26)
    while p.count < size - 1 { p.append(letter) }
    p.append(UInt8(ascii: "\n"))
    return p
}

func testBody(pieces n: Int, size: Int, id: String = "") -> [UInt8] {
    (0..<n).flatMap { testPiece($0, size: size, id: id) }
}

/// A small HTTP/1.1 server for curl tests, on its own EventLoop and thread, so the client loop's
/// registration and timer counts contain only curl's.
///
/// Routes (query: n pieces, delay ms between pieces, size bytes per piece, id tag):
/// - `/stream?n&delay&size&id&mode=chunked|close` 200, pieces spaced by `delay`
/// - `/ratelimit` 429 with a JSON body and `retry-after: 7`
/// - `/hang` 200 head (chunked), then nothing
/// - `/reset?n&delay` chunked pieces, then RST (SO_LINGER 0)
/// - `/stall?n&delay` chunked pieces, then silence with the connection open
/// - `/truncate` content-length 1000, 10 bytes, then FIN
/// - `/big?size` one content-length body of `size` bytes
/// - `/echo` 200 echoing the `x-test` header and the request body
final class TestHTTPServer {
    struct Handle: Sendable {
        let port: Int
        let loop: LoopHandle
        let thread: pthread_t
        func stop() {
            loop.stop()
            ReactorThread.join(thread)
        }
    }

    private final class Shared: Sendable {
        let value = Mutex<(port: Int, loop: LoopHandle?)>((0, nil))
    }

    /// Starts the server thread and waits (at most 5 s) for its port.
    static func start() -> Handle? {
        let shared = Shared()
        let tid = ReactorThread.spawn(name: "test-http") {
            guard let loop = try? EventLoop() else {
                shared.value.withLock { $0.port = -1 }
                return
            }
            let server = TestHTTPServer(loop: loop)
            guard let port = server.listen() else {
                shared.value.withLock { $0.port = -1 }
                return
            }
            shared.value.withLock { $0 = (port, loop.handle) }
            loop.run()
            server.close()
        }
        guard let tid else { return nil }
        for _ in 0..<5000 {
            let v = shared.value.withLock { $0 }
            if v.port < 0 { ReactorThread.join(tid); return nil }
            if let l = v.loop { return Handle(port: v.port, loop: l, thread: tid) }
            usleep(1000)
        }
        return nil
    }

    let loop: EventLoop
    private var listener: TCPListener?
    fileprivate var conns: [ObjectIdentifier: ServerConn] = [:]

    init(loop: EventLoop) { self.loop = loop }

    func listen() -> Int? {
        do {
            let fd = try Sockets.listen(host: "127.0.0.1", port: 0, reusePort: false)
            listener = try TCPListener(loop: loop, fd: fd) { [weak self] cfd in
                guard let self else { Glibc.close(cfd); return }
                // Small reads: ByteBuffer zero-fills the read window, which dominates a debug build at 64 KiB
                // (requests here are < 16 KiB).
                let limits = TCPConnectionLimits(maxReadBuffer: 16 * 1024, highWater: 64 * 1024, lowWater: 16 * 1024)
                guard let c = try? TCPConnection(loop: self.loop, fd: cfd, limits: limits) else { Glibc.close(cfd); return }
                let sc = ServerConn(server: self, conn: c)
                c.delegate = sc
                self.conns[ObjectIdentifier(sc)] = sc
            }
            return listener?.port
        } catch {
            return nil
        }
    }

    func close() {
        listener?.close()
        for c in Array(conns.values) { c.conn.close() }
    }
}

private final class ServerConn: TCPConnectionDelegate {
    unowned let server: TestHTTPServer
    let conn: TCPConnection
    private var timers: [TimerID] = []
    private var responding = false

    init(server: TestHTTPServer, conn: TCPConnection) {
        self.server = server
        self.conn = conn
    }

    func connectionDidRead(_ c: TCPConnection) {
        guard !responding else { return }
        let bytes = Array(c.readBuffer.unreadBytes)
        guard let end = findHeadEnd(bytes) else { return }
        let head = String(decoding: bytes[0..<end], as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        guard !lines.isEmpty else { c.close(); return }
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { c.close(); return }
        var headers: [String: String] = [:]
        for l in lines {
            guard let colon = l.firstIndex(of: ":") else { continue }
            headers[l[..<colon].lowercased()] = l[l.index(after: colon)...].trimmingCharacters(in: " ")
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        let total = end + 4 + length
        guard bytes.count >= total else { return }
        let body = Array(bytes[(end + 4)..<total])
        c.readBuffer.consume(total)
        responding = true
        respond(target: String(requestLine[1]), headers: headers, body: body)
    }

    func connectionReadDidEnd(_ c: TCPConnection) { c.close() }
    func connectionWritabilityChanged(_ c: TCPConnection, isWritable: Bool) {}
    func connectionDidClose(_ c: TCPConnection, reason: CloseReason) {
        for t in timers { server.loop.cancel(t) }
        timers.removeAll()
        server.conns[ObjectIdentifier(self)] = nil
    }

    private func findHeadEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }

    private func after(_ ms: Int, _ body: @escaping () -> Void) {
        timers.append(server.loop.schedule(afterMillis: Int64(ms)) { [weak self] in
            guard let self, !self.conn.isClosed else { return }
            body()
        })
    }

    private func finished() {
        responding = false
        timers.removeAll()
        if !conn.readBuffer.isEmpty { connectionDidRead(conn) }
    }

    private func chunk(_ bytes: [UInt8]) {
        conn.write(String(bytes.count, radix: 16) + "\r\n")
        conn.write(contentsOf: bytes)
        conn.write("\r\n")
    }

    private func respond(target: String, headers: [String: String], body: [UInt8]) {
        let parts = target.split(separator: "?", maxSplits: 1)
        let path = String(parts.first ?? "")
        var q: [String: String] = [:]
        if parts.count > 1 {
            for kv in parts[1].split(separator: "&") {
                let p = kv.split(separator: "=", maxSplits: 1)
                q[String(p[0])] = p.count > 1 ? String(p[1]) : ""
            }
        }
        let n = Int(q["n"] ?? "") ?? 3
        let delay = Int(q["delay"] ?? "") ?? 10
        let size = Int(q["size"] ?? "") ?? 32
        let id = q["id"] ?? ""
        switch path {
        case "/stream":
            let close = q["mode"] == "close"
            if close {
                conn.write("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-upstream: test\r\nconnection: close\r\n\r\n")
            } else {
                conn.write("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-upstream: test\r\ntransfer-encoding: chunked\r\n\r\n")
            }
            sendPieces(0, n: n, delay: delay, size: size, id: id, chunked: !close) { [weak self] in
                guard let self else { return }
                if close { self.conn.closeAfterFlush() } else { self.conn.write("0\r\n\r\n"); self.finished() }
            }
        case "/ratelimit":
            let json = #"{"error":{"type":"rate_limit_error","message":"slow down"}}"#
            conn.write("HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 7\r\ncontent-length: \(json.utf8.count)\r\n\r\n" + json)
            finished()
        case "/hang":
            conn.write("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        case "/reset", "/stall":
            conn.write("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            let reset = path == "/reset"
            sendPieces(0, n: n, delay: delay, size: size, id: id, chunked: true) { [weak self] in
                guard let self, reset else { return }
                self.after(delay) {
                    // SO_LINGER {on, 0}: close sends RST instead of FIN.
                    var l = linger(l_onoff: 1, l_linger: 0)
                    setsockopt(self.conn.fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
                    self.conn.close()
                }
            }
        case "/truncate":
            conn.write("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789")
            conn.closeAfterFlush()
        case "/big":
            conn.write("HTTP/1.1 200 OK\r\ncontent-length: \(size)\r\n\r\n")
            conn.write(contentsOf: [UInt8](repeating: UInt8(ascii: "x"), count: size))
            finished()
        case "/echo":
            let out = Array("x-test=\(headers["x-test"] ?? "-");expect=\(headers["expect"] ?? "-");len=\(body.count);".utf8) + body
            conn.write("HTTP/1.1 200 OK\r\ncontent-length: \(out.count)\r\n\r\n")
            conn.write(contentsOf: out)
            finished()
        default:
            conn.write("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            finished()
        }
    }

    private func sendPieces(_ i: Int, n: Int, delay: Int, size: Int, id: String, chunked: Bool, then done: @escaping () -> Void) {
        guard i < n else { done(); return }
        after(delay) { [weak self] in
            guard let self else { return }
            let p = testPiece(i, size: size, id: id)
            if chunked { self.chunk(p) } else { self.conn.write(contentsOf: p) }
            self.sendPieces(i + 1, n: n, delay: delay, size: size, id: id, chunked: chunked, then: done)
        }
    }
}

private extension String {
    func trimmingCharacters(in set: Character) -> String {
        String(drop(while: { $0 == set }).reversed().drop(while: { $0 == set }).reversed())
    }
}
private extension Substring {
    func trimmingCharacters(in set: Character) -> String { String(self).trimmingCharacters(in: set) }
}
