import Foundation
import Synchronization
import Storage
import Testing
#if canImport(Glibc)
import Glibc
#endif

// The end-to-end harness: one throw-away PostgreSQL cluster per test process, the real
// `mock-upstream` and `chatrelay` executables as subprocesses, and raw-socket HTTP/SSE clients.

enum HarnessError: Error, CustomStringConvertible {
    case setup(String)
    case io(String)
    var description: String {
        switch self {
        case .setup(let s): return "setup: \(s)"
        case .io(let s): return "io: \(s)"
        }
    }
}

// MARK: Database

/// `CHAT_TEST_DATABASE_URL`, or an embedded cluster in a temporary folder (stopped at exit).
struct ChatTestDatabase: Sendable {
    let conninfo: String
    let embedded: EmbeddedPostgres?
    let tempDir: String?

    static let shared: Result<ChatTestDatabase, StorageStartupError> = {
        if let url = ProcessInfo.processInfo.environment["CHAT_TEST_DATABASE_URL"], !url.isEmpty {
            return .success(ChatTestDatabase(conninfo: url, embedded: nil, tempDir: nil))
        }
        let base = NSTemporaryDirectory() + "chatrelay-apitest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            // As root, postgres runs as the `postgres` user, which must traverse this folder.
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: base)
        } catch {
            return .failure(StorageStartupError("cannot create \(base): \(error)"))
        }
        let pg = EmbeddedPostgres(dataDir: base + "/data")
        do {
            let conninfo = try pg.start()
            atexit { ChatTestDatabase.stopAtExit() }
            return .success(ChatTestDatabase(conninfo: conninfo, embedded: pg, tempDir: base))
        } catch {
            return .failure(error as? StorageStartupError ?? StorageStartupError("\(error)"))
        }
    }()

    static func stopAtExit() {
        guard case .success(let c) = shared, let pg = c.embedded else { return }
        try? pg.stop(mode: .immediate)
        if let dir = c.tempDir { try? FileManager.default.removeItem(atPath: dir) }
    }

    static func get() throws -> ChatTestDatabase { try shared.get() }
    static var isEmbedded: Bool {
        ProcessInfo.processInfo.environment["CHAT_TEST_DATABASE_URL"].map { $0.isEmpty } ?? true
    }
}

// MARK: Executables

enum Binaries {
    /// The folder holding the test bundle, where `swift build --build-tests` also puts the executables.
    static let folder: String = {
        var candidates: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
            candidates.append(url.path)
            // …/debug/ChatRelayPackageTests.xctest may itself be a folder on some set-ups.
            url = url.deletingLastPathComponent()
            candidates.append(url.path)
        }
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().path)
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for scratch in [".build-ct", ".build"] {
            candidates.append(repo.appendingPathComponent("\(scratch)/debug").path)
        }
        for c in candidates where FileManager.default.isExecutableFile(atPath: c + "/chatrelay")
            && FileManager.default.isExecutableFile(atPath: c + "/mock-upstream") {
            return c
        }
        return candidates.first ?? "."
    }()

    static var chatrelay: String { folder + "/chatrelay" }
    static var mockUpstream: String { folder + "/mock-upstream" }
}

/// A free TCP port on 127.0.0.1 (bound and released; the OS does not hand it out again at once).
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// A child process with its output in a log file; killed when released.
final class Child: @unchecked Sendable {
    let process = Process()
    let logPath: String
    let name: String

    init(name: String, executable: String, arguments: [String], environment: [String: String]) throws {
        self.name = name
        logPath = NSTemporaryDirectory() + "chatapitest-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath) else { throw HarnessError.setup("cannot open \(logPath)") }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { throw HarnessError.setup("cannot start \(executable): \(error)") }
        try? log.close()
        Child.register(process.processIdentifier)
    }

    /// Children still running when the test process exits (the shared relay and mock live in
    /// statics that are never released) are killed then, so no run leaves servers behind.
    private static let live = Mutex<Set<Int32>>([])
    private static let installExitHook: Void = { atexit { Child.killAllAtExit() } }()

    private static func register(_ pid: Int32) {
        _ = installExitHook
        live.withLock { _ = $0.insert(pid) }
    }

    private static func killAllAtExit() {
        for pid in live.withLock({ $0 }) { kill(pid, SIGKILL) }
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    func signal(_ sig: Int32) { if process.isRunning { kill(process.processIdentifier, sig) } }

    /// Waits for exit up to `seconds`; nil when still running.
    func waitForExit(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func stop() {
        Child.live.withLock { _ = $0.remove(process.processIdentifier) }
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        _ = waitForExit(seconds: 5)
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

// MARK: Mock upstream

final class MockUpstream: @unchecked Sendable {
    let child: Child
    let port: Int

    init() throws {
        var lastError: Error?
        for _ in 0..<5 {
            let p = freePort()
            do {
                let c = try Child(name: "mock", executable: Binaries.mockUpstream, arguments: ["--port", String(p)], environment: [:])
                if waitUntil(seconds: 10, { (try? HTTPClient.get(port: p, "/health", timeout: 1))?.status == 200 || !c.isRunning }), c.isRunning {
                    child = c
                    port = p
                    return
                }
                lastError = HarnessError.setup("mock-upstream did not come up: \(c.log)")
            } catch { lastError = error }
        }
        throw lastError ?? HarnessError.setup("mock-upstream did not start")
    }

    func health() throws -> [String: Any] {
        let r = try HTTPClient.get(port: port, "/health", timeout: 5)
        return r.json ?? [:]
    }

    var activeStreams: Int { ((try? health())?["active_streams"] as? Int) ?? -1 }
    var requestCount: Int { ((try? health())?["requests"] as? Int) ?? -1 }

    /// The last model request the mock received: its path and JSON body.
    func lastRequest() throws -> (path: String, body: [String: Any]) {
        let r = try HTTPClient.get(port: port, "/last-request", timeout: 5)
        guard r.status == 200, let body = r.json else { throw HarnessError.io("no last request (status \(r.status))") }
        return (r.header("X-Mock-Path") ?? "", body)
    }

    /// ChatRelay's environment pointing every provider at this mock.
    func providerEnvironment() -> [String: String] {
        [
            "OPENAI_API_KEY": "x", "OPENAI_BASE_URL": "http://127.0.0.1:\(port)/v1",
            "ANTHROPIC_API_KEY": "x", "ANTHROPIC_BASE_URL": "http://127.0.0.1:\(port)",
            "GOOGLE_API_KEY": "x", "GEMINI_BASE_URL": "http://127.0.0.1:\(port)/v1beta",
        ]
    }
}

// MARK: ChatRelay

final class Relay: @unchecked Sendable {
    let child: Child
    let port: Int
    static let keys = ["k1", "k2"]

    /// Starts chatrelay against the shared database and `mock`, with `extra` settings on top.
    init(mock: MockUpstream?, _ extra: [String: String] = [:]) throws {
        let db = try ChatTestDatabase.get()
        var lastError: Error?
        for _ in 0..<3 {
            let p = freePort()
            var env: [String: String] = [
                "CHAT_API_KEYS": Relay.keys.joined(separator: ","), "DATABASE_URL": db.conninfo, "PORT": String(p),
                "HOST": "127.0.0.1", "CHAT_WORKERS": "1", "LOG_LEVEL": "warn",
                "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            ]
            if let mock { env.merge(mock.providerEnvironment()) { _, new in new } }
            env.merge(extra) { _, new in new }
            let dir = NSTemporaryDirectory() + "chatrelay-apitest-run-\(UInt32.random(in: 0...UInt32.max))"
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            env["CHAT_DATA_DIR"] = dir
            do {
                let c = try Child(name: "relay", executable: Binaries.chatrelay, arguments: [], environment: env)
                if waitUntil(seconds: 30, { (try? HTTPClient.get(port: p, "/api/v1/health", timeout: 1)) != nil || !c.isRunning }), c.isRunning {
                    child = c
                    port = p
                    return
                }
                lastError = HarnessError.setup("chatrelay did not come up: \(c.log)")
            } catch { lastError = error }
        }
        throw lastError ?? HarnessError.setup("chatrelay did not start")
    }

    func chat(_ body: [String: Any], key: String = "k1", timeout: Double = 30) throws -> SSEResult {
        let s = try SSEClient(port: port, path: "/api/v1/chat", headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"],
                              body: try JSONSerialization.data(withJSONObject: body), timeout: timeout)
        return try s.readToEnd()
    }

    func openChat(_ body: [String: Any], key: String = "k1", timeout: Double = 30) throws -> SSEClient {
        try SSEClient(port: port, path: "/api/v1/chat", headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"],
                      body: try JSONSerialization.data(withJSONObject: body), timeout: timeout)
    }

    func get(_ path: String, key: String? = "k1") throws -> HTTPResult {
        try HTTPClient.request(port: port, method: "GET", path: path, headers: key.map { ["Authorization": "Bearer \($0)"] } ?? [:])
    }

    func conversation(_ id: String, key: String = "k1") throws -> [String: Any] {
        let r = try get("/api/v1/conversations/\(id)", key: key)
        guard r.status == 200, let j = r.json else { throw HarnessError.io("GET conversation \(id): \(r.status) \(r.text)") }
        return j
    }

    /// The conversation's messages.
    func messages(_ id: String, key: String = "k1") throws -> [[String: Any]] {
        (try conversation(id, key: key)["messages"] as? [[String: Any]]) ?? []
    }

    /// Polls until the conversation's last message has left `streaming` (or the time is up).
    func finalAnswer(_ id: String, key: String = "k1", seconds: Double = 10) throws -> [String: Any] {
        var last: [String: Any] = [:]
        _ = waitUntil(seconds: seconds) {
            guard let m = try? self.messages(id, key: key).last else { return false }
            last = m
            return (m["status"] as? String) != "streaming"
        }
        return last
    }
}

/// Polls `condition` every 50 ms until true or the time is up.
@discardableResult
func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    repeat {
        if condition() { return true }
        usleep(50_000)
    } while Date() < deadline
    return condition()
}

// MARK: Raw HTTP

struct HTTPResult {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
    var errorType: String? { (json?["error"] as? [String: Any])?["type"] as? String }
    var errorParam: String? { (json?["error"] as? [String: Any])?["param"] as? String }
    var errorMessage: String? { (json?["error"] as? [String: Any])?["message"] as? String }
}

/// A blocking socket to 127.0.0.1 with a receive timeout, so no read waits forever.
final class TestSocket {
    private(set) var fd: Int32

    /// `receiveBuffer`: a small SO_RCVBUF, set before connecting, makes a client that does not
    /// read push back on the server quickly.
    init(port: Int, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError.io("socket: errno \(errno)") }
        if var v = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, socklen_t(MemoryLayout<Int32>.size)) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            fd = -1
            throw HarnessError.io("connect to \(port): errno \(e)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; throw HarnessError.io("send: errno \(errno)") }
            off += n
        }
    }

    /// Reads what is available within `seconds`: nil on timeout, [] at EOF.
    func receive(seconds: Double) throws -> [UInt8]? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let rc = poll(&p, 1, Int32(max(0, seconds * 1000)))
        if rc == 0 { return nil }
        if rc < 0 { if errno == EINTR { return nil }; throw HarnessError.io("poll: errno \(errno)") }
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 {
            if errno == ECONNRESET { return [] }
            throw HarnessError.io("recv: errno \(errno)")
        }
        return Array(buf.prefix(n))
    }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    deinit { close() }
}

func requestBytes(method: String, path: String, headers: [String: String], body: [UInt8]) -> [UInt8] {
    var s = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for (k, v) in headers { s += "\(k): \(v)\r\n" }
    if !body.isEmpty || method == "POST" { s += "Content-Length: \(body.count)\r\n" }
    s += "\r\n"
    return Array(s.utf8) + body
}

/// Incremental HTTP/1.1 response reader: head, then a chunked or sized or close-delimited body.
struct ResponseParser {
    var buffer: [UInt8] = []
    var status = 0
    var headers: [(String, String)] = []
    var headDone = false
    var chunked = false
    var contentLength: Int?
    var body: [UInt8] = []
    var complete = false
    private var chunkRemaining = -1  // -1: expecting a size line

    mutating func feed(_ bytes: [UInt8]) throws {
        buffer += bytes
        if !headDone {
            guard let end = find(buffer, [13, 10, 13, 10]) else { return }
            let head = String(decoding: buffer[..<end], as: UTF8.self)
            buffer.removeFirst(end + 4)
            var lines = head.components(separatedBy: "\r\n")
            let first = lines.removeFirst().split(separator: " ")
            guard first.count >= 2, let st = Int(first[1]) else { throw HarnessError.io("bad status line: \(head)") }
            status = st
            for l in lines {
                guard let c = l.firstIndex(of: ":") else { continue }
                headers.append((String(l[..<c]), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)))
            }
            headDone = true
            chunked = headers.contains { $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased().contains("chunked") }
            contentLength = headers.first { $0.0.lowercased() == "content-length" }.flatMap { Int($0.1) }
            if !chunked && contentLength == nil && (status == 204 || status == 304) { contentLength = 0 }
        }
        if chunked {
            while true {
                if chunkRemaining < 0 {
                    guard let eol = find(buffer, [13, 10]) else { return }
                    let line = String(decoding: buffer[..<eol], as: UTF8.self)
                    guard let n = Int(line.split(separator: ";")[0].trimmingCharacters(in: .whitespaces), radix: 16) else {
                        throw HarnessError.io("bad chunk size \(line)")
                    }
                    buffer.removeFirst(eol + 2)
                    if n == 0 { complete = true; return }
                    chunkRemaining = n
                }
                guard buffer.count >= chunkRemaining + 2 else {
                    // Take what we have of the chunk now so streaming consumers see it.
                    let take = min(buffer.count, chunkRemaining)
                    body += buffer[..<take]
                    buffer.removeFirst(take)
                    chunkRemaining -= take
                    return
                }
                body += buffer[..<chunkRemaining]
                buffer.removeFirst(chunkRemaining + 2)
                chunkRemaining = -1
            }
        } else if let n = contentLength {
            body += buffer
            buffer.removeAll()
            if body.count >= n { complete = true }
        } else {
            body += buffer
            buffer.removeAll()
        }
    }
}

func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
    guard hay.count >= needle.count else { return nil }
    var i = 0
    while i <= hay.count - needle.count {
        if hay[i] == needle[0] && Array(hay[i..<i + needle.count]) == needle { return i }
        i += 1
    }
    return nil
}

enum HTTPClient {
    static func request(port: Int, method: String, path: String, headers: [String: String] = [:], body: [UInt8] = [],
                        timeout: Double = 15) throws -> HTTPResult {
        let s = try TestSocket(port: port)
        defer { s.close() }
        var h = headers
        h["Connection"] = "close"
        try s.send(requestBytes(method: method, path: path, headers: h, body: body))
        return try readResponse(from: s, label: "\(method) \(path)", timeout: timeout, closeMayEndBody: true)
    }

    /// Reads one response from `s`. With `closeMayEndBody`, a body without a length ends at the
    /// close (as HTTP/1.1 allows); without it, any close before the response is complete fails.
    static func readResponse(from s: TestSocket, label: String, timeout: Double, closeMayEndBody: Bool) throws -> HTTPResult {
        var p = ResponseParser()
        let deadline = Date().addingTimeInterval(timeout)
        while !p.complete {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw HarnessError.io("\(label): no complete response within \(timeout) s") }
            guard let bytes = try s.receive(seconds: left) else { continue }
            if bytes.isEmpty {
                if closeMayEndBody && p.headDone && !p.chunked && p.contentLength == nil { break }
                throw HarnessError.io("\(label): connection closed before the response was complete")
            }
            try p.feed(bytes)
        }
        return HTTPResult(status: p.status, headers: p.headers, body: p.body)
    }

    static func get(port: Int, _ path: String, timeout: Double = 15) throws -> HTTPResult {
        try request(port: port, method: "GET", path: path, timeout: timeout)
    }
}

// MARK: SSE

struct SSEEvent {
    var id: String?
    var event: String
    var data: String
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] }
}

enum SSEItem {
    case event(SSEEvent)
    case comment(String)

    var event: SSEEvent? { if case .event(let e) = self { return e }; return nil }
}

/// Splits an SSE byte stream into events and comments.
struct SSEParser {
    private var pending: [UInt8] = []
    private var current = SSEEvent(id: nil, event: "message", data: "")
    private var hasData = false

    mutating func feed(_ bytes: [UInt8]) -> [SSEItem] {
        pending += bytes
        var out: [SSEItem] = []
        while let nl = pending.firstIndex(of: 10) {
            var line = Array(pending[..<nl])
            pending.removeFirst(nl + 1)
            if line.last == 13 { line.removeLast() }
            let s = String(decoding: line, as: UTF8.self)
            if s.isEmpty {
                if hasData || current.event != "message" || current.id != nil { out.append(.event(current)) }
                current = SSEEvent(id: nil, event: "message", data: "")
                hasData = false
            } else if s.hasPrefix(":") {
                out.append(.comment(String(s.dropFirst()).trimmingCharacters(in: .whitespaces)))
            } else {
                let (k, v) = s.firstIndex(of: ":").map { (String(s[..<$0]), String(s[s.index(after: $0)...]).drop { $0 == " " }) }
                    ?? (s, Substring(""))
                switch k {
                case "id": current.id = String(v)
                case "event": current.event = String(v)
                case "data":
                    current.data += hasData ? "\n" + v : String(v)
                    hasData = true
                default: break
                }
            }
        }
        return out
    }
}

struct SSEResult {
    var status: Int
    var headers: [(String, String)]
    var items: [SSEItem]
    /// The body when the response was not a stream (an error before the stream started).
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    var events: [SSEEvent] { items.compactMap(\.event) }
    func first(_ name: String) -> SSEEvent? { events.first { $0.event == name } }
    var text: String { events.filter { $0.event == "token" }.compactMap { $0.json?["text"] as? String }.joined() }
    var conversationID: String? { first("start")?.json?["conversation_id"] as? String }
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
    var errorType: String? { (json?["error"] as? [String: Any])?["type"] as? String }
}

/// One streamed request: reads the head, then SSE items one by one; can hang up at any point.
final class SSEClient {
    let socket: TestSocket
    private var parser = ResponseParser()
    private var sse = SSEParser()
    private var queue: [SSEItem] = []
    private var consumed = 0
    private(set) var items: [SSEItem] = []
    private(set) var ended = false
    let deadline: Date

    init(port: Int, path: String, headers: [String: String], body: Data, timeout: Double, receiveBuffer: Int32? = nil) throws {
        deadline = Date().addingTimeInterval(timeout)
        socket = try TestSocket(port: port, receiveBuffer: receiveBuffer)
        try socket.send(requestBytes(method: "POST", path: path, headers: headers, body: Array(body)))
        while !parser.headDone {
            try pump()
            if ended && !parser.headDone { throw HarnessError.io("connection closed before the response head") }
        }
    }

    var status: Int { parser.status }
    var headers: [(String, String)] { parser.headers }
    var isStream: Bool { parser.headers.contains { $0.0.lowercased() == "content-type" && $0.1.hasPrefix("text/event-stream") } }

    private func pump() throws {
        let left = deadline.timeIntervalSinceNow
        guard left > 0 else { throw HarnessError.io("stream did not end within its time limit; got \(items.count) items") }
        guard let bytes = try socket.receive(seconds: min(left, 1)) else { return }
        if bytes.isEmpty { ended = true; return }
        let before = parser.body.count
        try parser.feed(bytes)
        if parser.complete { ended = true }
        if isStream && parser.body.count > before {
            let fresh = sse.feed(Array(parser.body[before...]))
            queue += fresh
        }
    }

    /// The next event or comment; nil when the stream is over.
    func next() throws -> SSEItem? {
        while queue.isEmpty && !ended { try pump() }
        guard !queue.isEmpty else { return nil }
        let item = queue.removeFirst()
        items.append(item)
        return item
    }

    /// Reads until an event named `name` (returned) or the end (nil).
    func next(event name: String) throws -> SSEEvent? {
        while let item = try next() {
            if let e = item.event, e.event == name { return e }
        }
        return nil
    }

    /// Reads until the response ends.
    func readToEnd() throws -> SSEResult {
        while try next() != nil {}
        while !ended { try pump() }
        return result
    }

    var result: SSEResult { SSEResult(status: parser.status, headers: parser.headers, items: items, body: isStream ? [] : parser.body) }

    /// Hangs up (RST-free close).
    func disconnect() { socket.close() }
}

/// Sends a chat request without waiting for the response head (to hang up before it comes).
enum SSEClientAsync {
    static func open(_ relay: Relay, _ body: [String: Any], key: String = "k1") throws -> TestSocket {
        let s = try TestSocket(port: relay.port)
        try s.send(requestBytes(method: "POST", path: "/api/v1/chat",
                                headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"], body: jsonBytes(body)))
        return s
    }
}

func jsonBytes(_ o: [String: Any]) -> [UInt8] { Array((try? JSONSerialization.data(withJSONObject: o)) ?? Data()) }

/// The text the mock upstream generates for `[mock tokens=n]` (MockText.words, repeating).
func mockText(tokens n: Int) -> String {
    let words = ["Hello", " from", " the", " mock", " upstream", ",", " token", " stream", " é", " ✓"]
    return (0..<n).map { words[$0 % words.count] }.joined()
}

/// Raises this process's open-file limit to its hard limit (500 streams need 500+ sockets).
func raiseFileLimit() {
    var rl = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    if rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = rl.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    }
}
