import Testing
import Glibc
import Synchronization
@testable import Reactor

/// Counts events and records what it saw; used to test dispatch and stale-event filtering.
final class RecordingHandler: IOHandler {
    var events: [IOEvents] = []
    var onEvent: ((IOEvents) -> Void)?
    func handleIO(_ e: IOEvents) {
        events.append(e)
        onEvent?(e)
    }
}

func makePipe() -> (read: Int32, write: Int32) {
    var fds: [Int32] = [0, 0]
    let rc = pipe(&fds)
    precondition(rc == 0)
    for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    return (fds[0], fds[1])
}

/// Runs the loop until `done` is set or `seconds` pass; returns false on timeout.
func runLoop(_ loop: EventLoop, seconds: Double = 5, until done: () -> Bool) -> Bool {
    let deadline = monotonicNanos() + UInt64(seconds * 1e9)
    let guardTimer = loop.schedule(afterNanos: UInt64(seconds * 1e9)) {}
    defer { loop.cancel(guardTimer) }
    while !done() {
        if monotonicNanos() > deadline { return false }
        loop.tick(block: true)
    }
    return true
}

@Suite struct EventLoopTests {
    @Test func readableEventIsDispatched() throws {
        let loop = try EventLoop()
        let p = makePipe()
        defer { close(p.read); close(p.write) }
        let h = RecordingHandler()
        let token = try loop.register(fd: p.read, interest: .readable, handler: h)
        _ = write(p.write, "x", 1)
        #expect(runLoop(loop) { !h.events.isEmpty })
        #expect(h.events[0].contains(.readable))
        loop.deregister(token)
    }

    @Test func staleEventForClosedAndReusedFdIsDropped() throws {
        let loop = try EventLoop()
        let a = makePipe()
        let b = makePipe()
        defer { close(a.write); close(b.read); close(b.write) }
        let first = RecordingHandler()
        let second = RecordingHandler()
        let killer = RecordingHandler()
        // Both pipes are readable in the same batch; the killer handler (fd b) closes fd a and
        // re-registers the same fd number with a new handler before a's event is dispatched.
        var tokenA = try loop.register(fd: a.read, interest: .readable, handler: first)
        let tokenB = try loop.register(fd: b.read, interest: .readable, handler: killer)
        var reusedFd: Int32 = -1
        var replacementWrite: Int32 = -1
        killer.onEvent = { _ in
            guard reusedFd < 0 else { return }
            loop.deregister(tokenA)
            close(a.read)
            let c = makePipe()  // lowest free fd: reuses a.read's number
            reusedFd = c.read
            replacementWrite = c.write
            tokenA = try! loop.register(fd: c.read, interest: .readable, handler: second)
        }
        // epoll's ready list is FIFO: b's event comes first in the batch, then a's (now stale).
        _ = write(b.write, "2", 1)
        _ = write(a.write, "1", 1)
        #expect(runLoop(loop) { reusedFd >= 0 })
        loop.tick(block: false)
        #expect(reusedFd == a.read, "the fd number was reused within the batch")
        #expect(first.events.isEmpty, "a's old handler was deregistered before its event")
        // The replacement pipe never had data: any event it got would be the stale one.
        #expect(second.events.isEmpty, "stale event delivered to new registration")
        loop.deregister(tokenA)
        loop.deregister(tokenB)
        close(reusedFd)
        close(replacementWrite)
    }

    @Test func generationChangesOnReRegistration() throws {
        let loop = try EventLoop()
        let p = makePipe()
        defer { close(p.read); close(p.write) }
        let h = RecordingHandler()
        let t1 = try loop.register(fd: p.read, interest: .readable, handler: h)
        loop.deregister(t1)
        let t2 = try loop.register(fd: p.read, interest: .readable, handler: h)
        #expect(t1 != t2)
        // A stale token can no longer modify or remove the new registration.
        loop.deregister(t1)
        #expect(loop.interest(of: t2) == .readable)
        loop.deregister(t2)
        #expect(loop.registrationCount == 1, "only the inbox eventfd remains")
    }

    @Test func timersFireInOrderAndCancelledOnesDoNot() throws {
        let loop = try EventLoop()
        var fired: [Int] = []
        loop.schedule(afterMillis: 30) { fired.append(3) }
        loop.schedule(afterMillis: 10) { fired.append(1) }
        let cancelled = loop.schedule(afterMillis: 20) { fired.append(99) }
        loop.schedule(afterMillis: 20) { fired.append(2) }
        loop.cancel(cancelled)
        let start = monotonicNanos()
        #expect(runLoop(loop) { fired.count == 3 })
        #expect(fired == [1, 2, 3])
        #expect(monotonicNanos() - start >= 30_000_000, "a timer fired early")
        #expect(loop.liveTimerCount == 0)
    }

    @Test func nextTickRunsAfterTheCurrentBatch() throws {
        let loop = try EventLoop()
        var order: [String] = []
        loop.nextTick { order.append("tick") ; loop.nextTick { order.append("nested") } }
        loop.schedule(afterMillis: 0) { order.append("timer") }
        #expect(runLoop(loop) { order.count == 3 })
        #expect(order.first == "timer" || order.first == "tick")
        #expect(order.last == "nested")
    }

    @Test func inboxWakesTheLoopFromAnotherThread() throws {
        let loop = try EventLoop()
        let handle = loop.handle
        let received = Mutex<Int>(0)
        var ranOnLoop = 0
        let t = ReactorThread.spawn(name: "poster") {
            for _ in 0..<100 {
                handle.run { _ in received.withLock { $0 += 1 } }
            }
            handle.stop()
        }
        // run() blocks in epoll_wait with no timers: only the eventfd can wake it.
        loop.nextTick { ranOnLoop += 1 }
        let start = monotonicNanos()
        loop.run()
        if let t { ReactorThread.join(t) }
        #expect(received.withLock { $0 } == 100)
        #expect(ranOnLoop == 1)
        #expect(monotonicNanos() - start < 5_000_000_000)
    }
}
