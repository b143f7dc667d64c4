#if canImport(Glibc)
import Glibc
#endif

/// The few file operations the application needs, as typed calls: the libc calls stay in this layer.
public enum FileSystem {
    /// The whole file as UTF-8 text, or nil when it does not exist or cannot be opened. A read error
    /// part-way ends the text there (EINTR is retried). At most `maxBytes` bytes are read: a bound
    /// for files that should be small (`/proc`, `/sys/fs/cgroup`) but are not ours.
    public static func readFile(_ path: String, maxBytes: Int = .max) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Syscall.close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 16 * 1024)
        while out.count < maxBytes {
            let want = min(buf.count, maxBytes - out.count)
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, want) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether anything exists at `path` (access(2) with F_OK).
    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Creates the directory with `mode` (before the umask); one that already exists is fine.
    public static func makeDirectory(_ path: String, mode: UInt32) throws(SystemError) {
        if mkdir(path, mode_t(mode)) != 0 && errno != EEXIST { throw SystemError("mkdir(\(path))") }
    }

    /// Creates the directory with `mode` and any missing parents with 0711 (traversable, not
    /// listable, as the data folder is); ones that exist are left as they are.
    public static func makeDirectories(_ path: String, mode: UInt32) throws(SystemError) {
        let parts = path.split(separator: "/").filter { !$0.isEmpty }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for (i, part) in parts.enumerated() {
            prefix += part
            if part != "." && part != ".." { try makeDirectory(prefix, mode: i == parts.count - 1 ? mode : 0o711) }
            prefix += "/"
        }
    }

    /// Creates or truncates the file with `mode` and writes `contents` with one write(2); a short
    /// write is an error.
    public static func writeFile(_ path: String, _ contents: String, mode: UInt32) throws(SystemError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else { throw SystemError("open(\(path))") }
        defer { Syscall.close(fd) }
        let n = contents.withCString { write(fd, $0, strlen($0)) }
        guard n == contents.utf8.count else { throw SystemError("write(\(path))") }
    }
}

/// The process environment, without Foundation.
public enum ProcessEnvironment {
    /// Every `NAME=value` of `environ`; entries without `=` are skipped.
    public static func variables() -> [String: String] {
        var out: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return out
    }
}
