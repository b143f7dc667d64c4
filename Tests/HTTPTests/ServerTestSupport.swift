import Testing
import Glibc
import Synchronization
@testable import HTTP
@testable import Reactor

// Integration harness: an HTTPServer on its own reactor thread, driven by plain blocking client
// sockets from the test thread, so the client shares no code with what is under test.

/// Something that lives on the loop thread only; the box is passed across threads, its value is
/// touched only inside `LoopHandle.run` closures or on the loop thread itself.
final class LoopOwned<T>: @unchecked Sendable {
    var value: T?
}

/// A value behind a lock, shareable between threads (a `Mutex` itself cannot be captured: it is ~Copyable).
final class Locked<T: Sendable>: Sendable {
    private let m: Mutex<T>
    init(_ v: T) { m = Mutex(v) }
    func withLock<R: Sendable>(_ body: (inout T) -> R) -> R { m.withLock { body(&$0) } }
    var value: T { m.withLock { $0 } }
}

/// What the loop thread publishes for the test thread (and the watchdog) to read.
struct ServerSnapshot: Sendable {
    var port = 0
    var connections = 0
    var stats = HTTPServer.Stats()
    var dump = ""
    var registrations = 0
    var timers = 0
    /// Largest outbound backlog seen by `/stream` while it was producing.
    var maxStreamBacklog = 0
    /// Times `/stream` stopped producing on writability false / resumed on true.
    var streamPauses = 0
    var streamResumes = 0
    var streamsFinished = 0
    var drainCompleted = false
    var slowCompleted = 0
    var loopExited = false

    var description: String {
        "port=\(port) connections=\(connections) registrations=\(registrations) timers=\(timers) stats=\(stats) "
            + "maxStreamBacklog=\(maxStreamBacklog) pauses=\(streamPauses) resumes=\(streamResumes) "
            + "streamsFinished=\(streamsFinished) drainCompleted=\(drainCompleted) loopExited=\(loopExited)\n"
            + (dump.isEmpty ? "(no connections)" : dump)
    }
}

/// An HTTPServer with a small test router on a background reactor thread.
final class TestServer: Sendable {
    let snapshot = Locked(ServerSnapshot())
    private let handleBox = Locked<LoopHandle?>(nil)
    private let serverBox = LoopOwned<HTTPServer>()
    private let thread = Locked<pthread_t?>(nil)

    /// Bytes written per `/stream` chunk.
    static let streamChunk = 16 * 1024

    init(config: HTTPServerConfig = HTTPServerConfig()) throws {
        let lfd = try Sockets.listen(host: "127.0.0.1", port: 0, reusePort: false)
        let snapshot = self.snapshot
        let handleBox = self.handleBox
        let serverBox = self.serverBox
        let t = ReactorThread.spawn(name: "test-server") {
            let loop: EventLoop
            do { loop = try EventLoop() } catch {
                Issue.record("EventLoop: \(error)")
                return
            }
            let router = Router()
            TestServer.installRoutes(router, snapshot: snapshot)
            let server = HTTPServer(loop: loop, config: config, router: router)
            serverBox.value = server
            do { try server.start(listeningFD: lfd) } catch {
                Issue.record("start: \(error)")
                return
            }
            loop.onDrainRequest = {
                server.drain { snapshot.withLock { $0.drainCompleted = true } }
            }
            // Publish state every 50 ms so the watchdog can read it even if the loop is busy elsewhere.
            func publish() {
                snapshot.withLock {
                    $0.connections = server.connectionCount
                    $0.stats = server.stats
                    $0.dump = server.stateDump
                    $0.registrations = loop.registrationCount
                    $0.timers = loop.liveTimerCount
                }
            }
            func tickPublish() {
                publish()
                loop.schedule(afterMillis: 50) { tickPublish() }
            }
            tickPublish()
            snapshot.withLock { $0.port = server.port }
            handleBox.withLock { $0 = loop.handle }
            loop.run()
            server.closeAll()
            serverBox.value = nil
            publish()
            snapshot.withLock { $0.loopExited = true }
        }
        thread.withLock { $0 = t }
        let deadline = monotonicNanos() + 5_000_000_000
        while handleBox.withLock({ $0 }) == nil {
            if monotonicNanos() > deadline { throw ClientError("test server did not start") }
            usleep(1000)
        }
    }

    var port: Int { snapshot.withLock { $0.port } }
    var state: ServerSnapshot { snapshot.withLock { $0 } }
    var handle: LoopHandle? { handleBox.withLock { $0 } }

    /// A fresh snapshot taken on the loop thread (waits up to 1 s; falls back to the last one).
    func freshState() -> ServerSnapshot {
        let box = serverBox
        let done = Locked(false)
        let snapshot = self.snapshot
        handle?.run { loop in
            if let s = box.value {
                snapshot.withLock {
                    $0.connections = s.connectionCount
                    $0.stats = s.stats
                    $0.dump = s.stateDump
                    $0.registrations = loop.registrationCount
                }
            }
            done.withLock { $0 = true }
        }
        let deadline = monotonicNanos() + 1_000_000_000
        while !done.withLock({ $0 }) && monotonicNanos() < deadline { usleep(500) }
        return state
    }

    /// Starts a graceful drain on the loop thread.
    func drain() { handle?.post(.drain) }

    /// Stops the loop, closing every connection, and joins the thread.
    func stop() {
        handle?.run { loop in loop.stop() }
        if let t = thread.withLock({ v -> pthread_t? in let t = v; v = nil; return t }) { ReactorThread.join(t) }
    }

    deinit { stop() }

    /// Waits until `condition` holds on a fresh snapshot, up to `seconds`.
    func waitFor(_ seconds: Double, _ condition: (ServerSnapshot) -> Bool) -> Bool {
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        while monotonicNanos() < deadline {
            if condition(freshState()) { return true }
            usleep(5_000)
        }
        return condition(freshState())
    }

    // MARK: Routes

    private static func installRoutes(_ router: Router, snapshot: Locked<ServerSnapshot>) {
        // /echo: the request body, or "METHOD path?query" when there is none.
        router.add(.get, "/echo/{tag}") { req, params, r in
            r.respond(status: 200, headers: HTTPHeaders([("Content-Type", "text/plain")]),
                      body: Array("GET \(params["tag"] ?? "")".utf8))
        }
        router.add(.get, "/echo") { req, _, r in
            r.respond(status: 200, headers: HTTPHeaders([("Content-Type", "text/plain")]), body: Array("GET \(req.head.target)".utf8))
        }
        router.add(.post, "/echo") { req, _, r in
            r.respond(status: 200, headers: HTTPHeaders([("Content-Type", "application/octet-stream")]), body: req.body)
        }
        // /slow?ms=N: answers after N ms (default 300) from a loop timer.
        router.add(.get, "/slow") { req, _, r in
            let ms = Int64(queryValue(req.head.query, "ms") ?? "") ?? 300
            guard let loop = r.loop else { return }
            loop.schedule(afterMillis: ms) {
                r.respond(status: 200, headers: HTTPHeaders([("Content-Type", "text/plain")]), body: Array("slow \(ms)".utf8))
                snapshot.withLock { $0.slowCompleted += 1 }
            }
        }
        // /stream?kib=N: N KiB of a repeating pattern, produced only while the client is writable.
        router.add(.get, "/stream") { req, _, r in
            let total = (Int(queryValue(req.head.query, "kib") ?? "") ?? 64) * 1024
            StreamProducer(responder: r, total: total, snapshot: snapshot).start()
        }
    }
}

private func queryValue(_ query: String?, _ name: String) -> String? {
    guard let query else { return nil }
    for pair in query.split(separator: "&") {
        let kv = pair.split(separator: "=", maxSplits: 1)
        if kv.count == 2 && kv[0] == name { return String(kv[1]) }
    }
    return nil
}

/// The byte at `offset` of every `/stream` body: lets the client check integrity and order.
func streamByte(_ offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: (offset &* 31) ^ (offset >> 10)) }

/// Produces a `/stream` body chunk by chunk on the loop, pausing while the connection is unwritable.
private final class StreamProducer {
    let r: HTTPResponder
    let total: Int
    var sent = 0
    var paused = false
    let snapshot: Locked<ServerSnapshot>

    init(responder: HTTPResponder, total: Int, snapshot: Locked<ServerSnapshot>) {
        r = responder
        self.total = total
        self.snapshot = snapshot
    }

    func start() {
        r.onWritabilityChanged = { [self] writable in
            if writable {
                snapshot.withLock { $0.streamResumes += 1 }
                paused = false
                r.loop?.nextTick { [self] in produce() }
            } else {
                snapshot.withLock { $0.streamPauses += 1 }
                paused = true
            }
        }
        r.beginStream(status: 200, headers: HTTPHeaders([("Content-Type", "application/octet-stream")]))
        produce()
    }

    func produce() {
        var chunk = [UInt8](repeating: 0, count: TestServer.streamChunk)
        while !paused && sent < total && r.state == .streaming {
            let n = min(chunk.count, total - sent)
            for i in 0..<n { chunk[i] = streamByte(sent + i) }
            sent += n
            guard r.write(Array(chunk[0..<n])) else { return }
            let backlog = r.connection?.tcp.pendingOutbound ?? 0
            snapshot.withLock { $0.maxStreamBacklog = max($0.maxStreamBacklog, backlog) }
        }
        if sent >= total && r.state == .streaming {
            r.endStream()
            snapshot.withLock { $0.streamsFinished += 1 }
        }
    }
}


// MARK: Blocking client

struct ClientError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A parsed response as the client saw it.
struct ClientResponse {
    var status: Int
    var version: String
    var headers: [(String, String)]
    var body: [UInt8]
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A blocking IPv4 client socket with receive/send timeouts: nothing in here can hang a test.
final class Client {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int, timeoutSeconds: Double = 3, receiveBuffer: Int32? = nil) throws {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw ClientError("socket: errno \(errno)") }
        fd = s
        if var v = receiveBuffer {
            // Before connect, so the advertised window is small from the start.
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, socklen_t(MemoryLayout<Int32>.size))
        }
        Client.setTimeout(fd, SO_RCVTIMEO, timeoutSeconds)
        Client.setTimeout(fd, SO_SNDTIMEO, timeoutSeconds)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw ClientError("connect: errno \(e)")
        }
    }

    deinit { Glibc.close(fd) }

    static func setTimeout(_ fd: Int32, _ opt: Int32, _ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, opt, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func setReceiveTimeout(_ seconds: Double) { Client.setTimeout(fd, SO_RCVTIMEO, seconds) }

    func send(_ s: String) throws { try send(Array(s.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ClientError("send: errno \(errno)") }
            off += n
        }
    }

    /// Reads more bytes into the buffer; returns 0 at EOF. Throws on timeout or error.
    @discardableResult
    private func fill() throws -> Int {
        var tmp = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = tmp.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { buffer.append(contentsOf: tmp[0..<n]); return n }
            if n == 0 { return 0 }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { throw ClientError("recv timed out") }
            if e == ECONNRESET { return 0 }
            throw ClientError("recv: errno \(e)")
        }
    }

    private func takeLine() throws -> String {
        while true {
            if let i = buffer.firstIndex(of: 0x0A) {
                var line = Array(buffer[..<i])
                if line.last == 0x0D { line.removeLast() }
                buffer.removeSubrange(...i)
                return String(decoding: line, as: UTF8.self)
            }
            guard try fill() > 0 else { throw ClientError("connection closed mid-line") }
        }
    }

    private func take(_ n: Int) throws -> [UInt8] {
        while buffer.count < n {
            guard try fill() > 0 else { throw ClientError("connection closed after \(buffer.count) of \(n) bytes") }
        }
        let out = Array(buffer[..<n])
        buffer.removeSubrange(..<n)
        return out
    }

    /// Reads one response head only (e.g. `100 Continue`).
    func readHead() throws -> ClientResponse {
        let statusLine = try takeLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { throw ClientError("bad status line: \(statusLine)") }
        var headers: [(String, String)] = []
        while true {
            let line = try takeLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { throw ClientError("bad header: \(line)") }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...].drop { $0 == " " })))
        }
        return ClientResponse(status: status, version: String(parts[0]), headers: headers, body: [])
    }

    /// Reads one whole response (Content-Length, chunked, or until close).
    func readResponse(method: String = "GET") throws -> ClientResponse {
        var r = try readHead()
        if method == "HEAD" || r.status == 204 || r.status == 304 || r.status < 200 { return r }
        if let te = r.header("Transfer-Encoding"), te.lowercased() == "chunked" {
            while true {
                let sizeLine = try takeLine()
                guard let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else { throw ClientError("bad chunk size \(sizeLine)") }
                if size == 0 { _ = try takeLine(); break }
                r.body += try take(size)
                _ = try takeLine()
            }
        } else if let cl = r.header("Content-Length"), let n = Int(cl) {
            r.body = try take(n)
        } else {
            while try fill() > 0 {}
            r.body = buffer
            buffer = []
        }
        return r
    }

    /// True when the server closed the connection (EOF or reset) within the receive timeout
    /// and sent nothing more.
    func isClosedByPeer() -> Bool {
        guard buffer.isEmpty else { return false }
        do { return try fill() == 0 } catch { return false }
    }
}

/// Fails the test with the server's state instead of hanging: after `seconds` it records the
/// dump and shuts down every client socket it was given, so blocked reads return at once.
final class Watchdog: Sendable {
    private let fired = Locked(false)
    private let done = Locked(false)
    private let fds = Locked<[Int32]>([])
    private let server: TestServer

    init(_ server: TestServer, seconds: Double, sourceLocation: SourceLocation = #_sourceLocation) {
        self.server = server
        let fired = self.fired, done = self.done, fds = self.fds
        _ = ReactorThread.spawn(name: "watchdog") {
            let deadline = monotonicNanos() + UInt64(seconds * 1e9)
            while monotonicNanos() < deadline {
                if done.withLock({ $0 }) { return }
                usleep(10_000)
            }
            if done.withLock({ $0 }) { return }
            fired.withLock { $0 = true }
            let dump = server.state.description
            Console.err("WATCHDOG fired after \(seconds)s\n\(dump)")
            Issue.record("watchdog fired after \(seconds)s; server state:\n\(dump)", sourceLocation: sourceLocation)
            for fd in fds.withLock({ $0 }) { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    func watch(_ c: Client) { fds.withLock { $0.append(c.fd) } }
    func watch(_ cs: [Client]) { fds.withLock { $0.append(contentsOf: cs.map(\.fd)) } }
    func finish() { done.withLock { $0 = true } }
    var hasFired: Bool { fired.withLock { $0 } }
}

/// Raises the soft fd limit to the hard one (1,000 connections need 2,000 fds in this process).
func raiseFileLimit() -> Int {
    var rl = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    if rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = rl.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    }
    return Int(rl.rlim_cur)
}
