#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Synchronization

/// The few messages other threads may send a loop.
public enum LoopMessage: Sendable {
    /// Stop the loop after this tick.
    case stop
    /// Begin a graceful drain (refuse new work, let open work finish).
    case drain
    /// Run a closure on the loop thread; it receives the loop, so it need capture nothing non-Sendable.
    case run(@Sendable (EventLoop) -> Void)
}

/// Cross-thread mailbox: a locked queue plus an eventfd. Wakeups coalesce: the eventfd is written
/// only when the queue goes from empty to non-empty (as NIO and libuv do).
public final class LoopInbox: Sendable {
    let eventFD: Int32
    private let queue = Mutex<[LoopMessage]>([])

    init() throws(SystemError) {
        let fd = eventfd(0, Int32(clinux_EFD_NONBLOCK_CLOEXEC))
        guard fd >= 0 else { throw SystemError("eventfd") }
        eventFD = fd
    }

    deinit { Syscall.close(eventFD) }

    public func post(_ message: LoopMessage) {
        let wasEmpty = queue.withLock { q -> Bool in
            let e = q.isEmpty
            q.append(message)
            return e
        }
        if wasEmpty {
            var one: UInt64 = 1
            _ = withUnsafeBytes(of: &one) { write(eventFD, $0.baseAddress, 8) }
        }
    }

    /// Takes everything queued; called on the loop thread after the eventfd fired.
    func takeAll() -> [LoopMessage] {
        var counter: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &counter) { read(eventFD, $0.baseAddress, 8) }
        return queue.withLock { q in
            let all = q
            q.removeAll(keepingCapacity: true)
            return all
        }
    }
}

/// The only thing other threads hold of a loop: a way to post messages to it.
public struct LoopHandle: Sendable {
    let inbox: LoopInbox
    public func post(_ message: LoopMessage) { inbox.post(message) }
    public func stop() { inbox.post(.stop) }
    public func run(_ body: @escaping @Sendable (EventLoop) -> Void) { inbox.post(.run(body)) }
}
