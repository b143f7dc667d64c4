#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Synchronization

/// A thread of its own for the blocking calls a loop must never make (file writes, fsync:
/// docs/reactor-notes.md F1). Jobs run one at a time in the order submitted, and each result
/// comes back to the submitting loop through its inbox, in the same order (one thread runs them,
/// and the inbox is first in, first out). The queue is bounded: past `capacity` jobs in flight,
/// `submit` refuses.
public final class BlockingWorker {
    public typealias Job = @Sendable () -> SystemError?

    private let loop: EventLoop
    private let capacity: Int
    private let shared: Shared
    private let home: Home
    private var thread: ReactorThread.Handle?
    /// Completions of the jobs in flight, oldest first (`head` is the next to run).
    private var completions: [(SystemError?) -> Void] = []
    private var head = 0
    private var closed = false

    /// What the thread and the loop share: the queue, and an eventfd the thread blocks on.
    private final class Shared: Sendable {
        struct State {
            var jobs: [Job] = []
            var closing = false
        }
        let wakeFD: Int32
        let state = Mutex(State())
        init(wakeFD: Int32) { self.wakeFD = wakeFD }
        deinit { Syscall.close(wakeFD) }

        func wake() {
            var one: UInt64 = 1
            _ = withUnsafeBytes(of: &one) { write(wakeFD, $0.baseAddress, 8) }
        }
    }

    /// The way back to this object from the thread: set once before the thread starts, and read
    /// only by closures that run on the loop (never on the thread), so it needs no lock.
    private final class Home: @unchecked Sendable {
        weak var worker: BlockingWorker?
    }

    public init(loop: EventLoop, name: String, capacity: Int) throws(SystemError) {
        let fd = eventfd(0, Int32(clinux_EFD_CLOEXEC))
        guard fd >= 0 else { throw SystemError("eventfd") }
        self.loop = loop
        self.capacity = max(1, capacity)
        shared = Shared(wakeFD: fd)
        home = Home()
        home.worker = self
        let shared = self.shared, home = self.home, handle = loop.handle
        guard let t = ReactorThread.spawn(name: name, { BlockingWorker.serve(shared, home, handle) }) else {
            throw SystemError("pthread_create", code: EAGAIN)
        }
        thread = t
    }

    /// Jobs submitted and not yet handed back.
    public var inFlight: Int { completions.count - head }

    /// Queues `job`; `then` runs on the loop with its result. False (and nothing queued) when the
    /// queue is full or the worker is closed.
    @discardableResult
    public func submit(_ job: @escaping Job, then: @escaping (SystemError?) -> Void) -> Bool {
        guard !closed, inFlight < capacity else { return false }
        completions.append(then)
        shared.state.withLock { $0.jobs.append(job) }
        shared.wake()
        return true
    }

    /// No more jobs: the thread ends once the queued ones have run (their results still come back
    /// while the loop runs).
    public func close() {
        guard !closed else { return }
        closed = true
        shared.state.withLock { $0.closing = true }
        shared.wake()
    }

    /// Waits for the thread to end (after `close`); never call it on a running loop.
    public func join() {
        close()
        if let t = thread { ReactorThread.join(t) }
        thread = nil
    }

    private func finished(_ result: SystemError?) {
        guard head < completions.count else { return }
        let done = completions[head]
        head += 1
        if head == completions.count {
            completions.removeAll(keepingCapacity: true)
            head = 0
        }
        done(result)
    }

    private static func serve(_ shared: Shared, _ home: Home, _ loop: LoopHandle) {
        while true {
            var counter: UInt64 = 0
            let n = withUnsafeMutableBytes(of: &counter) { read(shared.wakeFD, $0.baseAddress, 8) }
            if n < 0 && errno == EINTR { continue }
            let (jobs, closing) = shared.state.withLock { s -> ([Job], Bool) in
                let taken = s.jobs
                s.jobs.removeAll(keepingCapacity: true)
                return (taken, s.closing)
            }
            for job in jobs {
                let result = job()
                loop.run { _ in home.worker?.finished(result) }
            }
            if closing || n < 0 { return }
        }
    }
}
