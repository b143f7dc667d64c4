/// A loop timer's identity, used to cancel it.
public struct TimerID: Hashable, Sendable {
    let seq: UInt64
}

/// Min-heap of deadlines on the monotonic clock, ties broken by insertion order (libuv's
/// `start_id`). Cancellation drops the callback and leaves a tombstone in the heap, which is
/// skipped when it surfaces; the heap is rebuilt when tombstones outnumber live timers, so a
/// stream of scheduled-then-cancelled timers (idle timeouts reset per request) stays bounded.
public struct TimerHeap<Payload> {
    private struct Entry {
        let deadline: UInt64
        let seq: UInt64
        @inline(__always) func before(_ o: Entry) -> Bool {
            deadline != o.deadline ? deadline < o.deadline : seq < o.seq
        }
    }

    private var heap: [Entry] = []
    private var payloads: [UInt64: Payload] = [:]
    private var nextSeq: UInt64 = 1

    public init() {}

    /// Live (not cancelled, not fired) timers.
    public var count: Int { payloads.count }
    public var isEmpty: Bool { payloads.isEmpty }

    public mutating func schedule(at deadline: UInt64, _ payload: Payload) -> TimerID {
        let seq = nextSeq
        nextSeq &+= 1
        payloads[seq] = payload
        heap.append(Entry(deadline: deadline, seq: seq))
        siftUp(heap.count - 1)
        return TimerID(seq: seq)
    }

    /// Returns true when the timer was live.
    @discardableResult
    public mutating func cancel(_ id: TimerID) -> Bool {
        guard payloads.removeValue(forKey: id.seq) != nil else { return false }
        if heap.count > 64 && heap.count > 2 * payloads.count { compact() }
        return true
    }

    /// Earliest live deadline.
    public mutating func nextDeadline() -> UInt64? {
        dropTombstones()
        return heap.first?.deadline
    }

    /// Removes and returns the earliest live timer if it is due at `now`.
    public mutating func popDue(now: UInt64) -> Payload? {
        dropTombstones()
        guard let top = heap.first, top.deadline <= now else { return nil }
        removeTop()
        return payloads.removeValue(forKey: top.seq)
    }

    private mutating func dropTombstones() {
        while let top = heap.first, payloads[top.seq] == nil { removeTop() }
    }

    private mutating func removeTop() {
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
    }

    private mutating func compact() {
        heap.removeAll { payloads[$0.seq] == nil }
        if heap.count > 1 {
            for i in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(i) }
        }
    }

    private mutating func siftUp(_ start: Int) {
        var i = start
        let e = heap[i]
        while i > 0 {
            let p = (i - 1) / 2
            guard e.before(heap[p]) else { break }
            heap[i] = heap[p]
            i = p
        }
        heap[i] = e
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        let e = heap[i]
        let n = heap.count
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            let r = l + 1
            let c = (r < n && heap[r].before(heap[l])) ? r : l
            guard heap[c].before(e) else { break }
            heap[i] = heap[c]
            i = c
        }
        heap[i] = e
    }
}
