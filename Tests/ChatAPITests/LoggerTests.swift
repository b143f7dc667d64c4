import Testing
import Glibc
@testable import ChatAPI

/// The access log's fast path must write exactly what the generic logger writes.
@Suite struct LoggerTests {
    /// Lines a logger wrote to a pipe (loop nil: every line is flushed at once).
    private func lines(level: Config.LogLevel = .info, _ body: (Logger) -> Void) -> [String] {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { Issue.record("pipe"); return [] }
        defer { close(fds[0]) }
        do {
            // Released at the end of this block: it holds a description of the pipe of its own.
            let logger = Logger(format: .json, level: level, worker: 3, loop: nil, fd: fds[1])
            body(logger)
        }
        close(fds[1])
        var out: [UInt8] = []
        var b = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = b.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += b[0..<n]
        }
        return String(decoding: out, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    private func dropTime(_ line: String) -> String {
        // {"time":"2026-11-24T21:37:06.123Z",… → {…
        String(line.dropFirst(#"{"time":"2026-11-24T21:37:06.123Z","#.count))
    }

    @Test func timestampFormatting() {
        #expect(Timestamp.iso8601(millis: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.iso8601(millis: 1_795_000_000_123) == "2026-11-18T11:06:40.123Z")
        #expect(Timestamp.iso8601(millis: 1_795_000_000_007) == "2026-11-18T11:06:40.007Z")
    }

    @Test(arguments: [(UInt64(52), "0.052"), (1500, "1.5"), (12_000, "12.0"), (100, "0.1"), (1_234_567, "1234.567"), (0, "0.0")])
    func millisecondsPrintLikeDoubles(micros: UInt64, expected: String) {
        var out: [UInt8] = []
        Logger.appendMillis(micros: micros, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == expected)
        #expect(String(Double(micros) / 1000) == expected)
    }

    @Test func requestLineEqualsGenericLine() throws {
        let got = lines { log in
            log.request(requestID: "r1", method: "GET", path: "/a\"b\\c", status: 200, bytes: 57, durationMicros: 1500,
                        extra: [("model", .string("gpt-5")), ("tokens", .int(3))])
            log.info("request", [("request_id", .string("r1")), ("method", .string("GET")), ("path", .string("/a\"b\\c")), ("status", .int(200)),
                                 ("bytes", .int(57)), ("duration_ms", .double(1.5)), ("model", .string("gpt-5")), ("tokens", .int(3))])
        }
        try #require(got.count == 2)
        #expect(got[0].hasPrefix(#"{"time":""#))
        #expect(got[0].dropFirst(9).prefix(24).last == "Z")
        #expect(dropTime(got[0]) == dropTime(got[1]))
        #expect(dropTime(got[0]) == #""level":"info","worker":3,"msg":"request","request_id":"r1","method":"GET","path":"/a\"b\\c","status":200,"bytes":57,"duration_ms":1.5,"model":"gpt-5","tokens":3}"#)
    }

    @Test func requestLineRespectsLevel() {
        #expect(lines(level: .warn) { $0.request(requestID: "r", method: "GET", path: "/", status: 200, bytes: 0, durationMicros: 1) }.isEmpty)
    }
}
