#if canImport(Glibc)
import Glibc
#endif

/// Whole lines to stdout/stderr with write(2): no stdio buffers, which are shared mutable
/// state Swift 6 rightly refuses, and one syscall per line so lines from threads do not interleave.
public enum Console {
    public static func out(_ line: String) { write(fd: 1, line) }
    public static func err(_ line: String) { write(fd: 2, line) }

    private static func write(fd: Int32, _ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            off += n
        }
    }
}
