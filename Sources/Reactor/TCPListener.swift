#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// A non-blocking listener: on readiness it accepts until EAGAIN and hands each new fd over.
/// When the process runs out of fds (EMFILE/ENFILE) it stops listening for a moment instead of
/// spinning on a level-triggered socket it cannot drain (nginx disables accept the same way).
public final class TCPListener: IOHandler {
    public let fd: Int32
    public let port: Int
    private unowned let loop: EventLoop
    private var token: RegistrationToken?
    private var backoffTimer: TimerID?
    private let onAccept: (Int32) -> Void
    /// Accepts per readiness event, so a connection storm cannot starve established streams.
    private let acceptBatch = 256

    public init(loop: EventLoop, fd: Int32, onAccept: @escaping (Int32) -> Void) throws(SystemError) {
        self.loop = loop
        self.fd = fd
        self.port = Sockets.localPort(fd)
        self.onAccept = onAccept
        token = try loop.register(fd: fd, interest: .readable, handler: self)
    }

    public func handleIO(_ events: IOEvents) {
        for _ in 0..<acceptBatch {
            let c = clinux_accept4(fd, nil, nil, Int32(clinux_SOCK_NONBLOCK_CLOEXEC))
            if c >= 0 {
                Sockets.setNoDelay(c)
                onAccept(c)
                continue
            }
            let e = errno
            switch e {
            case EINTR, ECONNABORTED: continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                pauseAccepting(forMillis: 100)
                return
            default:
                return  // EAGAIN: drained
            }
        }
    }

    private func pauseAccepting(forMillis ms: Int64) {
        guard let t = token, backoffTimer == nil else { return }
        try? loop.modify(t, interest: [])
        backoffTimer = loop.schedule(afterMillis: ms) { [weak self] in
            guard let self, let t = self.token else { return }
            self.backoffTimer = nil
            try? self.loop.modify(t, interest: .readable)
        }
    }

    /// Stops accepting; the socket is closed so the kernel hands new connections to other workers.
    public func close() {
        if let b = backoffTimer { loop.cancel(b); backoffTimer = nil }
        if let t = token {
            loop.deregister(t)
            Syscall.close(fd)
            token = nil
        }
    }

    public var isOpen: Bool { token != nil }
}
