import Testing
import Glibc
@testable import Reactor

/// The host calls ChatAPI's logging and configuration use instead of libc: a never-blocking
/// output descriptor, bounded whole-file reads, UTC calendar fields.
@Suite struct NonBlockingOutputTests {
    private func write(_ out: NonBlockingOutput, _ bytes: [UInt8]) -> NonBlockingOutput.WriteResult {
        bytes.withUnsafeBytes { out.write($0) }
    }

    /// A pipe is reopened as a non-blocking description of its own: the inherited one keeps its
    /// flags, a full pipe reports `.full` instead of waiting, and a drained one takes bytes again.
    @Test func pipeIsReopenedNonBlockingAndReportsFull() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let out = NonBlockingOutput(fd: fds[1])
        #expect(out.kind == .reopened)
        #expect(out.fd != fds[1])
        #expect(fcntl(fds[1], F_GETFL) & O_NONBLOCK == 0)  // the caller's description is untouched
        #expect(fcntl(out.fd, F_GETFL) & O_NONBLOCK != 0)
        #expect(fcntl(out.fd, F_GETFD) & FD_CLOEXEC != 0)

        let chunk = [UInt8](repeating: 0x41, count: 64 * 1024)
        var written = 0
        var sawFull = false
        for _ in 0..<1_000 {
            switch write(out, chunk) {
            case .wrote(let n): written += n
            case .full: sawFull = true
            case .gone(let e): Issue.record("unexpected: \(e)")
            }
            if sawFull { break }
        }
        #expect(sawFull)
        #expect(written > 0)
        #expect(!out.waitWritable(millis: 10))

        // Drain the reader: room again.
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        var read = 0
        while read < written {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fds[0], $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            read += n
        }
        #expect(read == written)
        #expect(out.waitWritable(millis: 100))
        #expect(write(out, Array("x\n".utf8)) == .wrote(2))
        #expect(write(out, []) == .wrote(0))
    }

    /// A pipe whose reader has gone reports `.gone` with the errno (EPIPE), as a value.
    @Test func closedReaderIsGone() throws {
        signal(SIGPIPE, SIG_IGN)  // the server ignores it process-wide (Signals.swift)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[1]) }
        let out = NonBlockingOutput(fd: fds[1])
        close(fds[0])
        guard case .gone(let e) = write(out, Array("x\n".utf8)) else {
            Issue.record("expected .gone"); return
        }
        #expect(e.code == EPIPE)
        #expect(e.description.contains("write(fd"))
    }

    /// The reopened descriptor belongs to the output and is closed with it; the caller's stays open.
    @Test func reopenedDescriptorIsClosedWithTheOutput() {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        var own: Int32 = -1
        do {
            let out = NonBlockingOutput(fd: fds[1])
            own = out.fd
            #expect(fcntl(own, F_GETFD) >= 0)
            _ = out
        }
        #expect(fcntl(own, F_GETFD) == -1 && errno == EBADF)
        #expect(fcntl(fds[1], F_GETFD) >= 0)
    }

    @Test func regularFileIsWrittenAsItIs() throws {
        let path = "/tmp/reactor-nbout-\(getpid())-\(monotonicNanos())"
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        #expect(fd >= 0)
        defer { close(fd); unlink(path) }
        let out = NonBlockingOutput(fd: fd)
        #expect(out.kind == .plain)
        #expect(out.fd == fd)
        #expect(write(out, Array("hello\n".utf8)) == .wrote(6))
        #expect(FileSystem.readFile(path) == "hello\n")
    }

    @Test func socketIsSentWithoutWaiting() throws {
        var sv: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sv) == 0)
        defer { close(sv[0]); close(sv[1]) }
        let out = NonBlockingOutput(fd: sv[0])
        #expect(out.kind == .socket)
        #expect(out.fd == sv[0])
        #expect(fcntl(sv[0], F_GETFL) & O_NONBLOCK == 0)
        let chunk = [UInt8](repeating: 0x42, count: 64 * 1024)
        var sawFull = false
        for _ in 0..<1_000 {
            if case .full = write(out, chunk) { sawFull = true; break }
        }
        #expect(sawFull)
    }

    @Test func badDescriptorIsGone() {
        let out = NonBlockingOutput(fd: -1)
        #expect(out.kind == .plain)
        guard case .gone(let e) = write(out, Array("x".utf8)) else { Issue.record("expected .gone"); return }
        #expect(e.code == EBADF)
        #expect(!out.waitWritable(millis: 0))
    }
}

@Suite struct HostFileAndTimeTests {
    @Test func readFileHonoursTheBound() throws {
        let dir = "/tmp/reactor-read-\(getpid())-\(monotonicNanos())"
        try FileSystem.makeDirectory(dir, mode: 0o700)
        defer { unlink(dir + "/f"); rmdir(dir) }
        let text = String(repeating: "0123456789", count: 5_000)  // 50,000 bytes: several reads
        try FileSystem.writeFile(dir + "/f", text, mode: 0o600)
        #expect(FileSystem.readFile(dir + "/f") == text)
        #expect(FileSystem.readFile(dir + "/f", maxBytes: 1 << 20) == text)
        #expect(FileSystem.readFile(dir + "/f", maxBytes: 20_001) == String(text.prefix(20_001)))
        #expect(FileSystem.readFile(dir + "/f", maxBytes: 0) == "")
        #expect(FileSystem.readFile(dir + "/missing", maxBytes: 10) == nil)
        // /proc files report size 0 but still read whole.
        #expect(FileSystem.readFile("/proc/self/status", maxBytes: 1 << 20)?.contains("Cpus_allowed_list:") == true)
    }

    @Test func utcFields() {
        #expect(UTCTime(epochSeconds: 0) == UTCTime(year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0))
        // 2026-11-24T21:37:06Z
        #expect(UTCTime(epochSeconds: 1_795_556_226) == UTCTime(year: 2026, month: 11, day: 24, hour: 21, minute: 37, second: 6))
        // A leap day, and the second before the epoch.
        #expect(UTCTime(epochSeconds: 951_782_400) == UTCTime(year: 2000, month: 2, day: 29, hour: 0, minute: 0, second: 0))
        #expect(UTCTime(epochSeconds: -1) == UTCTime(year: 1969, month: 12, day: 31, hour: 23, minute: 59, second: 59))
    }
}
