#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// One look at another process through /proc: CPU (utime+stime), RSS (VmRSS) and open fds.
struct ProcSample {
    var pid: Int32
    var cpuNanos: UInt64
    var rssBytes: UInt64
    var fds: Int
    var alive: Bool

    static let ticksPerSecond: UInt64 = {
        let t = sysconf(Int32(_SC_CLK_TCK))
        return t > 0 ? UInt64(t) : 100
    }()

    static func take(_ pid: Int32) -> ProcSample {
        var s = ProcSample(pid: pid, cpuNanos: 0, rssBytes: 0, fds: 0, alive: false)
        guard let stat = readSmallFile("/proc/\(pid)/stat") else { return s }
        s.alive = true
        // Fields after the parenthesised command name (which may contain spaces).
        if let close = stat.lastIndex(of: UInt8(ascii: ")")) {
            let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " "))
            // fields[0] is field 3 (state); utime is field 14, stime 15.
            if fields.count > 13, let u = UInt64(String(decoding: fields[11], as: UTF8.self)),
               let st = UInt64(String(decoding: fields[12], as: UTF8.self)) {
                s.cpuNanos = (u + st) * (1_000_000_000 / ticksPerSecond)
            }
        }
        if let status = readSmallFile("/proc/\(pid)/status") {
            for line in status.split(separator: UInt8(ascii: "\n")) where line.starts(with: Array("VmRSS:".utf8)) {
                let digits = line.filter { $0 >= 0x30 && $0 <= 0x39 }
                s.rssBytes = (UInt64(String(decoding: digits, as: UTF8.self)) ?? 0) * 1024
            }
        }
        s.fds = countEntries("/proc/\(pid)/fd")
        return s
    }

    /// Reads a /proc file (they report size 0, so read until EOF), at most 64 KiB.
    static func readSmallFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while out.count < 64 * 1024 {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    static func countEntries(_ dir: String) -> Int {
        guard let d = opendir(dir) else { return 0 }
        defer { closedir(d) }
        var n = 0
        while let e = readdir(d) {
            let first = withUnsafeBytes(of: e.pointee.d_name) { $0[0] }
            if first != UInt8(ascii: ".") { n += 1 }
        }
        return n
    }

    /// The 1-minute load average: a busy machine (parallel builds) makes figures noisy.
    static func loadAverage() -> Double {
        guard let b = readSmallFile("/proc/loadavg"), let f = b.split(separator: UInt8(ascii: " ")).first else { return -1 }
        return Double(String(decoding: f, as: UTF8.self)) ?? -1
    }

    static func selfSample() -> ProcSample {
        ProcSample(pid: getpid(), cpuNanos: 0, rssBytes: 0, fds: 0, alive: true).withSelf()
    }

    private func withSelf() -> ProcSample {
        var s = ProcSample.take(pid)
        s.cpuNanos = ProcessStats.cpuNanos
        return s
    }
}
