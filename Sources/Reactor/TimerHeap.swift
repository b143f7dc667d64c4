/// A loop timer's identity, used to cancel it: its sequence number (unique for the loop's life)
/// and the slot that holds its payload while it is live.
public struct TimerID: Hashable, Sendable {
    let seq: UInt64
    let slot: Int32
}

/// Min-heap of deadlines on the monotonic clock, ties broken by insertion order (libuv's
/// `start_id`). Payloads live in a slab of slots reused through a free list, so scheduling and
/// cancelling a timer is array work, with no hashing and no allocation once the slab has grown
/// to the loop's peak of live timers. Cancellation empties the slot and leaves a tombstone in
/// the heap, recognised because its slot is empty or holds a newer timer, and skipped when it
/// surfaces; the heap is rebuilt when tombstones outnumber live timers, so a stream of
/// scheduled-then-cancelled timers (idle timeouts reset per request) stays bounded.
public struct TimerHeap<Payload> {
    private struct Entry {
        let deadline: UInt64
        let seq: UInt64
        let slot: Int32
        @inline(__always) func before(_ o: Entry) -> Bool {
            deadline != o.deadline ? deadline < o.deadline : seq < o.seq
        }
    }

    private struct Slot {
        var seq: UInt64
        var payload: Payload?
    }

    private var heap: [Entry] = []
    private var slots: [Slot] = []
    private var freeSlots: [Int32] = []
    private var live = 0
    private var nextSeq: UInt64 = 1

    public init() {}

    /// Live (not cancelled, not fired) timers.
    public var count: Int { live }
    public var isEmpty: Bool { live == 0 }

    public mutating func schedule(at deadline: UInt64, _ payload: Payload) -> TimerID {
        let seq = nextSeq
        nextSeq &+= 1
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
            slots[Int(free)] = Slot(seq: seq, payload: payload)
        } else {
            slot = Int32(slots.count)
            slots.append(Slot(seq: seq, payload: payload))
        }
        live += 1
        heap.append(Entry(deadline: deadline, seq: seq, slot: slot))
        siftUp(heap.count - 1)
        return TimerID(seq: seq, slot: slot)
    }

    /// Returns true when the timer was live.
    @discardableResult
    public mutating func cancel(_ id: TimerID) -> Bool {
        guard take(slot: id.slot, seq: id.seq) != nil else { return false }
        if heap.count > 64 && heap.count > 2 * live { compact() }
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
        return take(slot: top.slot, seq: top.seq)
    }

    /// Empties the slot when it still holds timer `seq`, and frees it for reuse.
    private mutating func take(slot: Int32, seq: UInt64) -> Payload? {
        let i = Int(slot)
        guard i >= 0, i < slots.count, slots[i].seq == seq, let payload = slots[i].payload else { return nil }
        slots[i].payload = nil
        freeSlots.append(slot)
        live -= 1
        return payload
    }

    @inline(__always)
    private func isLive(_ e: Entry) -> Bool {
        let i = Int(e.slot)
        return slots[i].seq == e.seq && slots[i].payload != nil
    }

    private mutating func dropTombstones() {
        while let top = heap.first, !isLive(top) { removeTop() }
    }

    private mutating func removeTop() {
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
    }

    private mutating func compact() {
        let slots = self.slots
        heap.removeAll { slots[Int($0.slot)].seq != $0.seq || slots[Int($0.slot)].payload == nil }
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
