#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Synchronization

/// A failed system call, with the call's name and errno, as a value rather than a crash.
public struct SystemError: Error, CustomStringConvertible, Equatable, Sendable {
    public let call: String
    public let code: Int32

    public init(_ call: String, code: Int32 = errno) {
        self.call = call
        self.code = code
    }

    public var description: String {
        "\(call) failed: \(String(cString: strerror(code))) (errno \(code))"
    }
}

/// The one place that retries EINTR and turns -1 into a thrown `SystemError`.
/// EAGAIN is reported to the caller as `nil` so non-blocking code can tell "would block" from failure.
enum Syscall {
    @inline(__always)
    static func retrying<T: BinaryInteger>(_ name: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> T {
        while true {
            let r = body()
            if r >= 0 { return r }
            let e = errno
            if e == EINTR { continue }
            throw SystemError(name(), code: e)
        }
    }

    /// Like `retrying`, but EAGAIN/EWOULDBLOCK gives nil instead of an error.
    @inline(__always)
    static func nonBlocking<T: BinaryInteger>(_ name: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> T? {
        while true {
            let r = body()
            if r >= 0 { return r }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            throw SystemError(name(), code: e)
        }
    }

    static func close(_ fd: Int32) {
        // close is never retried on EINTR on Linux: the fd is released either way.
        _ = Glibc.close(fd)
    }
}

/// Monotonic time in nanoseconds.
@inline(__always)
public func monotonicNanos() -> UInt64 { clinux_monotonic_ns() }

/// Wall-clock milliseconds since the Unix epoch.
@inline(__always)
public func wallClockMillis() -> Int64 { clinux_wall_ms() }

/// A moment as UTC calendar fields (gmtime_r), for formatting timestamps without Foundation.
public struct UTCTime: Equatable, Sendable {
    public var year: Int
    /// 1...12
    public var month: Int
    /// 1...31
    public var day: Int
    public var hour: Int
    public var minute: Int
    /// 0...60 (60 only on a leap second, which Unix time never shows)
    public var second: Int

    public init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        (self.year, self.month, self.day, self.hour, self.minute, self.second) = (year, month, day, hour, minute, second)
    }

    /// The UTC fields of `epochSeconds` (seconds since 1970-01-01T00:00:00Z). A time gmtime_r
    /// cannot represent (a year past Int32) gives the zero fields 1900-01-00T00:00:00.
    public init(epochSeconds: Int64) {
        var t = time_t(truncatingIfNeeded: epochSeconds)
        var fields = tm()
        _ = gmtime_r(&t, &fields)
        self.init(year: Int(fields.tm_year) + 1900, month: Int(fields.tm_mon) + 1, day: Int(fields.tm_mday),
                  hour: Int(fields.tm_hour), minute: Int(fields.tm_min), second: Int(fields.tm_sec))
    }
}

/// Process facts used by health, benches and tests.
public enum ProcessStats {
    public static var residentBytes: UInt64 { clinux_rss_bytes() }
    public static var cpuNanos: UInt64 { clinux_process_cpu_ns() }
    public static var openFileCount: Int { Int(clinux_open_fd_count()) }
    /// Hands freed heap back to the kernel; glibc keeps it otherwise after a burst of streams ends.
    @discardableResult
    public static func releaseFreeMemory() -> Bool { clinux_malloc_trim() == 1 }
}

/// Kernel randomness for ids and generated keys. Bytes come from getrandom(2) in 4 KiB refills
/// handed out once each, so a request that needs a few ids costs no system call.
public enum SecureRandom {
    private static let pool = Mutex(RandomPool())

    public static func bytes(_ count: Int) -> [UInt8] {
        guard count <= RandomPool.size / 4 else { return RandomPool.fresh(count) }
        return pool.withLock { $0.take(count) }
    }
}

private struct RandomPool {
    static let size = 4096
    private var buffer = [UInt8](repeating: 0, count: RandomPool.size)
    private var used = RandomPool.size

    static func fresh(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBytes { clinux_random($0.baseAddress, count) }
        precondition(ok == 0, "getrandom failed")  // only fails when the kernel has no entropy source at all
        return out
    }

    mutating func take(_ count: Int) -> [UInt8] {
        if used + count > buffer.count {
            buffer = RandomPool.fresh(RandomPool.size)
            used = 0
        }
        defer { used += count }
        return Array(buffer[used..<(used + count)])
    }
}
