import Testing
@testable import Reactor

@Suite struct TimerHeapTests {
    @Test func popsInDeadlineOrderWithFIFOTies() {
        var heap = TimerHeap<String>()
        _ = heap.schedule(at: 30, "c")
        _ = heap.schedule(at: 10, "a1")
        _ = heap.schedule(at: 20, "b")
        _ = heap.schedule(at: 10, "a2")
        var out: [String] = []
        while let p = heap.popDue(now: 100) { out.append(p) }
        #expect(out == ["a1", "a2", "b", "c"])
        #expect(heap.isEmpty)
    }

    @Test func notDueStaysQueued() {
        var heap = TimerHeap<Int>()
        _ = heap.schedule(at: 50, 1)
        #expect(heap.popDue(now: 49) == nil)
        #expect(heap.nextDeadline() == 50)
        #expect(heap.popDue(now: 50) == 1)
    }

    @Test func cancelledTimersNeverFireAndDoNotAccumulate() {
        var heap = TimerHeap<Int>()
        var ids: [TimerID] = []
        for i in 0..<10_000 { ids.append(heap.schedule(at: UInt64(i), i)) }
        for (i, id) in ids.enumerated() where i % 2 == 0 {
            let wasLive = heap.cancel(id)
            #expect(wasLive)
        }
        #expect(heap.count == 5_000)
        let again = heap.cancel(ids[0])
        #expect(!again, "cancelling twice reports false")
        var fired: [Int] = []
        while let p = heap.popDue(now: .max) { fired.append(p) }
        #expect(fired.count == 5_000)
        #expect(fired.allSatisfy { $0 % 2 == 1 })
        #expect(fired == fired.sorted())
    }

    /// A cancelled timer's slot is reused at once; its tombstone in the heap must not fire the
    /// newer timer early nor be confused with it, and cancelling the old id again is a no-op.
    @Test func reusedSlotsKeepTimersApart() {
        var heap = TimerHeap<String>()
        let old = heap.schedule(at: 10, "old")
        let wasLive = heap.cancel(old)
        #expect(wasLive)
        let new = heap.schedule(at: 50, "new")
        let oldAgain = heap.cancel(old)
        #expect(!oldAgain, "the old id does not cancel the timer now in its slot")
        #expect(heap.count == 1)
        #expect(heap.popDue(now: 10) == nil)
        #expect(heap.nextDeadline() == 50)
        #expect(heap.popDue(now: 50) == "new")
        let newAfterFiring = heap.cancel(new)
        #expect(!newAfterFiring)
        #expect(heap.isEmpty)
    }

    @Test func randomisedAgainstSortedReference() {
        var rng = SystemRandomNumberGenerator()
        var heap = TimerHeap<UInt64>()
        var live: [TimerID: UInt64] = [:]
        for _ in 0..<2_000 {
            let d = UInt64.random(in: 0..<1_000, using: &rng)
            live[heap.schedule(at: d, d)] = d
            if Bool.random(using: &rng), let victim = live.keys.randomElement(using: &rng) {
                heap.cancel(victim)
                live[victim] = nil
            }
        }
        var fired: [UInt64] = []
        while let p = heap.popDue(now: .max) { fired.append(p) }
        #expect(fired == live.values.sorted())
    }
}
