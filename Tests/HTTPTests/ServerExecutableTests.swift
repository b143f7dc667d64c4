import Testing
import Glibc
@testable import Reactor

/// The built `chatrelay` executable, as an operator runs it. `swift build --build-tests` builds
/// every product, so the binary sits next to the test bundle; it is never built from here.
@Suite(.serialized) struct ServerExecutableTests {
    static func binaryPath(filePath: String = #filePath) -> String? {
        var candidates: [String] = []
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0 {
            let exe = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let slash = exe.lastIndex(of: "/") { candidates.append(String(exe[..<slash]) + "/chatrelay") }
        }
        // Tests/HTTPTests/<file> → package root.
        let root = filePath.split(separator: "/", omittingEmptySubsequences: false).dropLast(3).joined(separator: "/")
        candidates.append(root + "/.build-st/debug/chatrelay")
        candidates.append(root + "/.build/debug/chatrelay")
        return candidates.first { access($0, X_OK) == 0 }
    }

    /// A free port on 127.0.0.1 (bound and released; the executable binds it right after).
    static func freePort() throws -> Int {
        let fd = try Sockets.listen(host: "127.0.0.1", port: 0, reusePort: false)
        defer { close(fd) }
        return Sockets.localPort(fd)
    }

    final class Process {
        let pid: pid_t
        let stderrFD: Int32
        var exitStatus: Int32?

        init(_ path: String, env: [String: String]) throws {
            var pipeFDs: [Int32] = [0, 0]
            guard pipe(&pipeFDs) == 0 else { throw ClientError("pipe") }
            for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }  // dup2 in the child clears it on fd 2
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
            let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
            let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer { for p in argv + envp { free(p) } }
            var p = pid_t()
            let rc = posix_spawn(&p, path, &actions, nil, argv, envp)
            close(pipeFDs[1])
            guard rc == 0 else { close(pipeFDs[0]); throw ClientError("posix_spawn: \(rc)") }
            pid = p
            stderrFD = pipeFDs[0]
        }

        /// Waits up to `seconds` for exit; returns the exit code (or 128+signal), nil on timeout.
        func wait(seconds: Double) -> Int32? {
            if let s = exitStatus { return s }
            let deadline = monotonicNanos() + UInt64(seconds * 1e9)
            repeat {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid {
                    let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                    exitStatus = code
                    return code
                }
                usleep(2_000)
            } while monotonicNanos() < deadline
            return nil
        }

        func stderrText() -> String {
            var out: [UInt8] = []
            var b = [UInt8](repeating: 0, count: 4096)
            let flags = fcntl(stderrFD, F_GETFL)
            _ = fcntl(stderrFD, F_SETFL, flags | O_NONBLOCK)
            while true {
                let n = b.withUnsafeMutableBytes { read(stderrFD, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                out += b[0..<n]
            }
            return String(decoding: out, as: UTF8.self)
        }

        deinit {
            if exitStatus == nil {
                kill(pid, SIGKILL)
                _ = wait(seconds: 2)
            }
            close(stderrFD)
        }
    }

    /// One data folder for every executable test of this process (the embedded cluster is reused).
    static let dataDir: String = {
        let d = "/tmp/chatrelay-httptests-\(getpid())"
        mkdir(d, 0o711)
        return d
    }()

    static func env(port: Int, _ extra: [String: String] = [:]) -> [String: String] {
        // No DATABASE_URL: the server starts its own PostgreSQL in a data folder of this test run.
        var e = ["PORT": String(port), "HOST": "127.0.0.1", "CHAT_WORKERS": "2",
                 "CHAT_DATA_DIR": dataDir, "PATH": "/usr/bin:/bin"]
        for (k, v) in extra { e[k] = v }
        return e
    }

    /// Polls /api/v1/health until it answers or `seconds` pass.
    static func waitHealthy(port: Int, seconds: Double) -> ClientResponse? {
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        while monotonicNanos() < deadline {
            if let c = try? Client(port: port, timeoutSeconds: 1) {
                if (try? c.send("GET /api/v1/health HTTP/1.1\r\nHost: t\r\n\r\n")) != nil, let r = try? c.readResponse() { return r }
            }
            usleep(5_000)
        }
        return nil
    }

    @Test func healthAnswersFromBothWorkersAndSIGTERMExitsZeroWhenIdle() throws {
        let path = try #require(Self.binaryPath(), "chatrelay binary not built next to the tests")
        let port = try Self.freePort()
        let p = try Process(path, env: Self.env(port: port))
        let health = try #require(Self.waitHealthy(port: port, seconds: 10), "no health answer; stderr: \(p.stderrText())")
        #expect(health.status == 200)
        #expect(health.header("Content-Type") == "application/json")
        #expect(health.text.contains(#""status":"ok""#))
        // SO_REUSEPORT spreads connections over both workers.
        var workers = Set<String>()
        for _ in 0..<40 {
            let c = try Client(port: port)
            try c.send("GET /api/v1/health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            let r = try c.readResponse()
            let parts = r.text.split(separator: "\"worker\":", maxSplits: 1)
            if parts.count == 2 { workers.insert(String(parts[1].prefix { $0.isNumber })) }
        }
        #expect(workers == ["0", "1"], "CHAT_WORKERS=2 should serve from workers 0 and 1, saw \(workers)")
        let t0 = monotonicNanos()
        kill(p.pid, SIGTERM)
        let code = p.wait(seconds: 3)
        let s = Double(monotonicNanos() - t0) / 1e9
        #expect(code == 0, "exit status \(String(describing: code)); stderr: \(p.stderrText())")
        #expect(s < 1.0, "idle SIGTERM took \(s) s")
    }

    @Test func badSettingExitsNonZeroWithOneLineNamingIt() throws {
        let path = try #require(Self.binaryPath(), "chatrelay binary not built next to the tests")
        let p = try Process(path, env: Self.env(port: try Self.freePort(), ["CHAT_WORKERS": "abc"]))
        let code = p.wait(seconds: 5)
        #expect(code != nil && code != 0, "exit status \(String(describing: code))")
        let err = p.stderrText()
        let lines = err.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(err)")
        #expect(err.contains("CHAT_WORKERS") && err.contains("abc"), "stderr: \(err)")
    }
}
