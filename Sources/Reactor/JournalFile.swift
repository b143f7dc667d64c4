#if canImport(Glibc)
import Glibc
#endif

/// One append-only journal file (framed by `JournalFraming`), held under an exclusive `flock` for
/// as long as it is open, so the one process appending to it is the only one that may read,
/// truncate or remove it: another process sees the lock and leaves the file alone, and the lock
/// goes with the process when it dies, which is how a replaying process knows the file is an
/// orphan (docs/reactor-notes.md F2). Every call blocks (writes, fsync): call it from a writer
/// thread or at start-up, never on a loop (F1). Used by one thread at a time: it is handed to its
/// writer thread once, whole.
public final class JournalFile: @unchecked Sendable {
    public let path: String
    private var fd: Int32
    /// Bytes of whole records in the file; the next append goes here.
    public private(set) var size: Int

    private init(path: String, fd: Int32, size: Int) {
        self.path = path
        self.fd = fd
        self.size = size
    }

    deinit { close() }

    /// Creates `directory/name` (which must not exist) and locks it; the directory is synced so the
    /// file itself survives a crash (docs/reactor-notes.md F3).
    public static func create(directory: String, name: String) throws(SystemError) -> JournalFile {
        let path = directory + "/" + name
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(0o600))
        guard fd >= 0 else { throw SystemError("open(\(path))") }
        // Nobody else can hold the lock of a file just made: a failure here is a real error.
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let e = SystemError("flock(\(path))")
            Syscall.close(fd)
            throw e
        }
        syncDirectory(directory)
        return JournalFile(path: path, fd: fd, size: 0)
    }

    /// Opens and locks an existing journal whose writer is gone; nil when a live process holds it,
    /// or another process took it and removed it meanwhile (it is no longer linked: F2), or it is gone.
    public static func claim(_ path: String) -> JournalFile? {
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var st = stat()
        guard flock(fd, LOCK_EX | LOCK_NB) == 0, fstat(fd, &st) == 0, st.st_nlink > 0 else {
            Syscall.close(fd)
            return nil
        }
        return JournalFile(path: path, fd: fd, size: Int(st.st_size))
    }

    /// The journal files (`suffix`) in `directory`, by path; none when it cannot be read.
    public static func list(directory: String, suffix: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var out: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name.hasSuffix(suffix) && !name.hasPrefix(".") { out.append(directory + "/" + name) }
        }
        return out.sorted()
    }

    /// Appends one record and waits until it is on disk (fdatasync). On failure the file is cut
    /// back to its last whole record, so a failed append never leaves a torn record before later
    /// ones.
    public func append(_ payload: [UInt8]) throws(SystemError) {
        let record = JournalFraming.frame(payload)
        var written = 0
        while written < record.count {
            let n = record.withUnsafeBytes { p -> Int in
                guard let base = p.baseAddress else { return 0 }
                return pwrite(fd, base + written, p.count - written, off_t(size + written))
            }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                let e = SystemError("write(\(path))", code: n < 0 ? errno : ENOSPC)
                _ = ftruncate(fd, off_t(size))
                throw e
            }
            written += n
        }
        guard fdatasync(fd) == 0 else {
            let e = SystemError("fdatasync(\(path))")
            _ = ftruncate(fd, off_t(size))
            throw e
        }
        size += record.count
    }

    /// Every whole record from the start, and the bytes after them that do not form one (a torn
    /// last append). The whole file is read: a journal holds the answers of one outage only.
    public func readRecords() -> (payloads: [[UInt8]], tornBytes: Int) {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var offset = 0
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            offset += n
        }
        let (payloads, valid) = JournalFraming.records(in: bytes)
        return (payloads, bytes.count - valid)
    }

    /// Empties the file (every record in it is stored elsewhere) and waits for that to be on disk.
    public func truncate() throws(SystemError) {
        guard ftruncate(fd, 0) == 0 else { throw SystemError("ftruncate(\(path))") }
        size = 0
        guard fdatasync(fd) == 0 else { throw SystemError("fdatasync(\(path))") }
    }

    /// Unlinks the file, then closes it (the lock is held until the name is gone).
    public func remove() throws(SystemError) {
        defer { close() }
        guard unlink(path) == 0 else { throw SystemError("unlink(\(path))") }
    }

    /// Closes the file, which releases the lock; the records stay for the next start-up.
    public func close() {
        guard fd >= 0 else { return }
        Syscall.close(fd)
        fd = -1
    }

    private static func syncDirectory(_ directory: String) {
        let d = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard d >= 0 else { return }
        _ = fsync(d)
        Syscall.close(d)
    }
}
