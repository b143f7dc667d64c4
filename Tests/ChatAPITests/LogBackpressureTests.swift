import Foundation
import Glibc
import Testing

extension ChatAPIEndToEnd {
    /// A log reader that stops reading must not stall the server: with stdout a pipe nobody
    /// reads, requests keep being answered at once and the lines that did not fit are counted.
    @Suite(.serialized) struct LogBackpressure {
        @Test func aStalledLogReaderDoesNotStallRequests() throws {
            let db = try ChatTestDatabase.get()
            let port = freePort()
            let dir = NSTemporaryDirectory() + "chatrelay-logpipe-\(UInt32.random(in: 0...UInt32.max))"
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Binaries.chatrelay)
            process.environment = [
                "CHAT_API_KEYS": "k1", "DATABASE_URL": db.conninfo, "PORT": String(port), "HOST": "127.0.0.1",
                "CHAT_WORKERS": "1", "LOG_LEVEL": "info", "CHAT_DATA_DIR": dir,
                "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            ]
            let stdout = Pipe()  // never read: once 64 KiB are in it, every write would block
            process.standardOutput = stdout
            process.standardError = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            try process.run()
            defer {
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
                try? stdout.fileHandleForReading.close()
                try? FileManager.default.removeItem(atPath: dir)
            }
            #expect(waitUntil(seconds: 30) { (try? HTTPClient.get(port: port, "/api/v1/health", timeout: 1))?.status == 200 || !process.isRunning })
            try #require(process.isRunning)

            // ~8 KB access-log lines: 400 of them are 3 MB of log, the pipe's 64 KiB and the
            // worker's 1 MiB backlog many times over.
            let long = "/nothing/" + String(repeating: "x", count: 8_000)
            let started = Date()
            for _ in 0..<400 {
                let r = try HTTPClient.request(port: port, method: "GET", path: long, timeout: 5)
                #expect(r.status == 404)
            }
            var answered = 0
            for _ in 0..<200 {
                let t = Date()
                let r = try HTTPClient.get(port: port, "/api/v1/health", timeout: 5)
                if r.status == 200 { answered += 1 }
                #expect(Date().timeIntervalSince(t) < 2, "a health request took \(Date().timeIntervalSince(t)) s")
            }
            #expect(answered == 200)
            #expect(Date().timeIntervalSince(started) < 60)
            let m = try HTTPClient.get(port: port, "/metrics", timeout: 5)
            #expect(m.status == 200)
            let line = m.text.split(separator: "\n").first { $0.hasPrefix("chatrelay_log_lines_dropped_total ") }
            let dropped = line.flatMap { Double($0.split(separator: " ").last ?? "") } ?? -1
            #expect(dropped > 0, "chatrelay_log_lines_dropped_total: \(line.map(String.init) ?? "missing")")
            #expect(process.isRunning)
        }
    }
}
