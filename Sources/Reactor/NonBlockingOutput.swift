#if canImport(Glibc)
import Glibc
#endif

/// A descriptor written without ever blocking the calling thread (a worker's log on stdout).
/// A pipe or terminal is reopened through `/proc/self/fd` as a description of its own with
/// `O_NONBLOCK` (setting the flag on the inherited description would change it for the parent and
/// every other holder too); a socket (journald) is written with `MSG_DONTWAIT`; a regular file, or
/// anything that cannot be reopened, is written as it is (writes to files do not wait for a reader).
public final class NonBlockingOutput {
    public enum Kind: Sendable, Equatable {
        /// Written as given: a regular file, or a descriptor that could not be reopened.
        case plain
        /// A pipe or terminal reopened non-blocking; this object owns (and closes) that descriptor.
        case reopened
        /// A socket, written with `send(MSG_DONTWAIT)`.
        case socket
    }

    /// What one `write` did.
    public enum WriteResult: Equatable, Sendable {
        /// Bytes taken (0 only when given nothing).
        case wrote(Int)
        /// The reader is full: try again later.
        case full
        /// The output is gone (closed reader, bad descriptor...): later writes will fail too.
        case gone(SystemError)
    }

    /// The descriptor written to: `fd` as given, or the reopened one.
    public let fd: Int32
    public let kind: Kind

    /// Wraps `fd`, which stays the caller's (only a reopened descriptor is closed by this object).
    public init(fd: Int32) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { self.fd = fd; kind = .plain; return }
        let type = st.st_mode & S_IFMT
        if type == S_IFSOCK {
            self.fd = fd
            kind = .socket
        } else if type == S_IFIFO || type == S_IFCHR {
            let own = open("/proc/self/fd/\(fd)", O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            if own >= 0 {
                self.fd = own
                kind = .reopened
            } else {
                self.fd = fd
                kind = .plain
            }
        } else {
            self.fd = fd
            kind = .plain
        }
    }

    deinit { if kind == .reopened { Syscall.close(fd) } }

    /// Writes what the reader takes now, without waiting (EINTR is retried).
    public func write(_ p: UnsafeRawBufferPointer) -> WriteResult {
        guard let base = p.baseAddress, p.count > 0 else { return .wrote(0) }
        while true {
            let n = kind == .socket
                ? send(fd, base, p.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
                : Glibc.write(fd, base, p.count)
            if n > 0 { return .wrote(n) }
            let e = errno
            if n < 0 && e == EINTR { continue }
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) { return .full }
            let call = kind == .socket ? "send(fd \(fd))" : "write(fd \(fd))"
            return .gone(n < 0 ? SystemError(call, code: e) : SystemError(call + " wrote nothing", code: EIO))
        }
    }

    /// Waits up to `millis` for the reader to make room (at shutdown, with no loop left to retry
    /// on); false on timeout or when the output is gone.
    public func waitWritable(millis: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        while true {
            let r = poll(&p, 1, millis)
            if r < 0 && errno == EINTR { continue }
            return r > 0 && p.revents & Int16(POLLOUT) != 0
        }
    }
}
