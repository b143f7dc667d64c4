import Testing
@testable import Reactor

@Suite struct BatchQueueTests {
    /// Work queued while a batch runs waits for the next batch, and a nested take while one is
    /// out gets what was queued meanwhile.
    @Test func whatABatchQueuesRunsInTheNextOne() {
        var q = BatchQueue<Int>()
        q.append(1)
        q.append(2)
        let first = q.take()
        q.append(3)
        let nested = q.take()
        q.giveBack(nested)
        q.append(4)
        q.giveBack(first)
        #expect(first == [1, 2] && nested == [3])
        #expect(q.take() == [4])
        #expect(q.isEmpty)
    }

    /// The loop drains these every pass: once a batch has run, its buffer, emptied but with its
    /// capacity, is where the queue after the next take collects, so a pass allocates nothing.
    @Test func buffersAreReusedPassAfterPass() {
        var q = BatchQueue<Int>()
        for pass in 0..<3 {
            for i in 0..<16 { q.append(pass * 16 + i) }
            let batch = q.take()
            #expect(batch.count == 16)
            q.giveBack(batch)
        }
        // Nothing queued: what comes out is an earlier batch's buffer, empty but still sized for it.
        let idle = q.take()
        #expect(idle.isEmpty && idle.capacity >= 16, "capacity \(idle.capacity)")
        q.giveBack(idle)
        let next = q.take()
        #expect(next.isEmpty && next.capacity >= 16, "capacity \(next.capacity)")
    }
}
