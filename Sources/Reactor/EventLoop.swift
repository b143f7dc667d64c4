#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// One single-threaded epoll reactor. It owns its epoll set, its registrations, a timer heap,
/// a next-tick queue and a cross-thread inbox; nothing else touches them, so nothing is locked.
///
/// Each tick: epoll_wait (timeout from the nearest timer, rounded up to whole ms as redis does) →
/// dispatch ready fds (stale generations dropped) → due timers → next-tick closures →
/// before-sleep hooks (coalesced socket flushes). Not Sendable: other threads use `handle`.
public final class EventLoop {
    private struct Slot {
        var generation: UInt32
        var interest: Interest
        let handler: IOHandler
    }

    public let handle: LoopHandle
    private let epfd: Int32
    private var slots: [Slot?] = []
    private var nextGeneration: UInt32 = 1
    private var timers = TimerHeap<() -> Void>()
    private var ticks = BatchQueue<() -> Void>()
    private var beforeSleep = BatchQueue<() -> Void>()
    /// Connections with bytes queued by the event being handled (or by this pass's timers and
    /// ticks): a list rather than a closure each, since every token frame of every stream lands here.
    private var pendingFlushes = BatchQueue<TCPConnection>()
    private var stopped = false
    private var inboxReader: InboxReader?
    private let maxEvents: Int32 = 512
    private var eventMasks: [UInt32]
    private var eventData: [UInt64]
    /// Cached at the start of each tick so a batch of handlers sees one "now" (nginx's ngx_current_msec).
    public private(set) var now: UInt64
    /// Called for `.drain` messages; the server installs it.
    public var onDrainRequest: (() -> Void)?
    /// The object that runs on this loop (a server worker), so a closure posted from another
    /// thread through `LoopHandle.run` can reach it without capturing anything non-Sendable.
    public weak var owner: AnyObject?
    /// One receive buffer per loop: sockets read into it and copy out only what arrived, so no
    /// per-connection read window is allocated or zero-filled.
    public let readScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    /// Number of live registrations; used by tests and the watchdog dump.
    public private(set) var registrationCount = 0

    public init() throws(SystemError) {
        let fd = epoll_create1(Int32(clinux_EPOLL_CLOEXEC))
        guard fd >= 0 else { throw SystemError("epoll_create1") }
        epfd = fd
        let inbox: LoopInbox
        do { inbox = try LoopInbox() } catch { Syscall.close(fd); throw error }
        handle = LoopHandle(inbox: inbox)
        eventMasks = [UInt32](repeating: 0, count: Int(maxEvents))
        eventData = [UInt64](repeating: 0, count: Int(maxEvents))
        now = monotonicNanos()
        let reader = InboxReader(loop: self)
        inboxReader = reader
        _ = try register(fd: inbox.eventFD, interest: .readable, handler: reader)
    }

    deinit {
        Syscall.close(epfd)
        readScratch.deallocate()
    }

    // MARK: Registrations

    /// Adds `fd` to the epoll set. The handler is kept alive until `deregister`.
    /// EEXIST falls back to MOD: curl re-adds the same socket after a pause (CURL_POLL_REMOVE churn).
    public func register(fd: Int32, interest: Interest, handler: IOHandler) throws(SystemError) -> RegistrationToken {
        let gen = nextGeneration
        nextGeneration = nextGeneration == UInt32.max ? 1 : nextGeneration + 1
        let data = UInt64(gen) << 32 | UInt64(UInt32(bitPattern: fd))
        if clinux_epoll_ctl(epfd, EPOLL_CTL_ADD, fd, interest.epollMask, data) != 0 {
            guard errno == EEXIST, clinux_epoll_ctl(epfd, EPOLL_CTL_MOD, fd, interest.epollMask, data) == 0 else {
                throw SystemError("epoll_ctl(ADD)")
            }
        }
        let i = Int(fd)
        if i >= slots.count { slots.append(contentsOf: repeatElement(nil, count: max(i + 1 - slots.count, slots.count))) }
        if slots[i] == nil { registrationCount += 1 }
        slots[i] = Slot(generation: gen, interest: interest, handler: handler)
        return RegistrationToken(fd: fd, generation: gen)
    }

    /// Changes what a registration listens for; a no-op when the mask is unchanged.
    /// ENOENT falls back to ADD: libpq may close and reopen its socket under the same number.
    public func modify(_ token: RegistrationToken, interest: Interest) throws(SystemError) {
        let i = Int(token.fd)
        guard i < slots.count, var slot = slots[i], slot.generation == token.generation else { return }
        if slot.interest == interest { return }
        let data = UInt64(token.generation) << 32 | UInt64(UInt32(bitPattern: token.fd))
        if clinux_epoll_ctl(epfd, EPOLL_CTL_MOD, token.fd, interest.epollMask, data) != 0 {
            guard errno == ENOENT, clinux_epoll_ctl(epfd, EPOLL_CTL_ADD, token.fd, interest.epollMask, data) == 0 else {
                throw SystemError("epoll_ctl(MOD)")
            }
        }
        slot.interest = interest
        slots[i] = slot
    }

    /// Current interest of a live registration.
    public func interest(of token: RegistrationToken) -> Interest? {
        let i = Int(token.fd)
        guard i < slots.count, let slot = slots[i], slot.generation == token.generation else { return nil }
        return slot.interest
    }

    /// Removes the fd from the epoll set. Call it before `close`: after close, DEL gives EBADF.
    public func deregister(_ token: RegistrationToken) {
        let i = Int(token.fd)
        guard i < slots.count, let slot = slots[i], slot.generation == token.generation else { return }
        // ENOENT/EBADF are fine here: the fd may already have left the set (libpq reconnect).
        _ = clinux_epoll_ctl(epfd, EPOLL_CTL_DEL, token.fd, 0, 0)
        slots[i] = nil
        registrationCount -= 1
    }

    // MARK: Timers and deferred work

    /// Runs `body` once after `nanos`. Cancel with `cancel(_:)`; owners cancel their timers when they close.
    @discardableResult
    public func schedule(afterNanos nanos: UInt64, _ body: @escaping () -> Void) -> TimerID {
        timers.schedule(at: monotonicNanos() &+ nanos, body)
    }

    @discardableResult
    public func schedule(afterMillis ms: Int64, _ body: @escaping () -> Void) -> TimerID {
        schedule(afterNanos: UInt64(max(0, ms)) * 1_000_000, body)
    }

    @discardableResult
    public func schedule(afterSeconds s: Double, _ body: @escaping () -> Void) -> TimerID {
        schedule(afterNanos: UInt64(max(0, s) * 1e9), body)
    }

    public func cancel(_ id: TimerID) { timers.cancel(id) }

    /// Runs `body` after the current batch of events, never re-entrantly.
    public func nextTick(_ body: @escaping () -> Void) { ticks.append(body) }

    /// Runs `body` once just before the loop next sleeps; used to coalesce writes of one tick.
    public func beforeNextSleep(_ body: @escaping () -> Void) { beforeSleep.append(body) }

    /// Queues a connection's coalesced send: after the event being handled, or before the loop sleeps.
    func enqueueFlush(_ connection: TCPConnection) { pendingFlushes.append(connection) }

    /// Stops `run()` after the current tick.
    public func stop() { stopped = true }
    public var isStopped: Bool { stopped }

    // MARK: Running

    /// Runs ticks until `stop()`.
    public func run() {
        stopped = false
        while !stopped { tick(block: true) }
        // Leave no work behind that a later run() would see as stale.
        runTicks()
        runBeforeSleep()
    }

    /// One iteration; `block: false` polls without sleeping (tests drive the loop this way).
    public func tick(block: Bool) {
        // The coalesced writes go out first, and only then is the sleep decided: deciding first
        // saw the writes still pending and polled with 0, one extra epoll_wait per pass that wrote.
        runBeforeSleep()
        let timeout: Int32
        if !block || !ticks.isEmpty || !beforeSleep.isEmpty || !pendingFlushes.isEmpty {
            timeout = 0
        } else if let deadline = timers.nextDeadline() {
            let t = monotonicNanos()
            timeout = deadline <= t ? 0 : Int32(min((deadline - t + 999_999) / 1_000_000, 60_000))
        } else {
            timeout = -1
        }
        let n = eventMasks.withUnsafeMutableBufferPointer { m in
            eventData.withUnsafeMutableBufferPointer { d in
                clinux_epoll_wait(epfd, m.baseAddress, d.baseAddress, maxEvents, timeout)
            }
        }
        now = monotonicNanos()
        if n > 0 {
            for k in 0..<Int(n) {
                let data = eventData[k]
                let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: data))
                let gen = UInt32(truncatingIfNeeded: data >> 32)
                let i = Int(fd)
                // Stale: the fd was closed (and maybe reused) by an earlier handler in this batch.
                guard i < slots.count, let slot = slots[i], slot.generation == gen else { continue }
                slot.handler.handleIO(IOEvents(epoll: eventMasks[k]))
                // What this event wrote goes out now, not after the rest of the batch: at 500 streams
                // a pass holds dozens of token events, and holding every write to the pass's end added
                // the whole batch's work to each token's delay. Writes of one event stay one send.
                if !pendingFlushes.isEmpty { runPendingFlushes() }
            }
        }
        runTimers()
        runTicks()
    }

    private func runTimers() {
        let t = monotonicNanos()
        // Timers scheduled by a firing timer run no earlier than the next tick (redis' maxId rule).
        var budget = timers.count
        while budget > 0, let body = timers.popDue(now: t) {
            budget -= 1
            body()
        }
    }

    private func runTicks() {
        // Work queued by these closures runs on the next round, so one producer cannot starve I/O.
        var rounds = 0
        while !ticks.isEmpty && rounds < 8 {
            rounds += 1
            let batch = ticks.take()
            for body in batch { body() }
            ticks.giveBack(batch)
        }
    }

    private func runPendingFlushes() {
        let batch = pendingFlushes.take()
        for c in batch { c.flushQueued() }
        pendingFlushes.giveBack(batch)
    }

    private func runBeforeSleep() {
        while !pendingFlushes.isEmpty || !beforeSleep.isEmpty {
            if !pendingFlushes.isEmpty { runPendingFlushes() }
            if !beforeSleep.isEmpty {
                let batch = beforeSleep.take()
                for body in batch { body() }
                beforeSleep.giveBack(batch)
            }
        }
    }

    fileprivate func handleInbox() {
        for message in handle.inbox.takeAll() {
            switch message {
            case .stop: stopped = true
            case .drain: onDrainRequest?()
            case .run(let body): body(self)
            }
        }
    }

    /// Live timers; the watchdog dump and leak tests read it.
    public var liveTimerCount: Int { timers.count }
}

private final class InboxReader: IOHandler {
    unowned let loop: EventLoop
    init(loop: EventLoop) { self.loop = loop }
    func handleIO(_ events: IOEvents) { loop.handleInbox() }
}
