/// A queue the loop drains a whole batch at a time while the batch's own work may queue more
/// (a tick that schedules a tick, a flush that closes a connection and wakes another). The batch
/// is taken out as the queue's buffer itself, and given back emptied to be the next queue's
/// buffer: copying the batch and then emptying the queue "keeping capacity" allocated a new
/// buffer every pass (the copy still shared the old one). A batch taken while another is out (a
/// nested tick) simply starts from an empty buffer.
struct BatchQueue<Element> {
    private var pending: [Element] = []
    /// An emptied batch's buffer, to be the queue after the next `take`.
    private var spare: [Element] = []

    var isEmpty: Bool { pending.isEmpty }

    mutating func append(_ element: Element) { pending.append(element) }

    /// Everything queued so far; the queue starts again in the spare buffer.
    mutating func take() -> [Element] {
        let batch = pending
        pending = spare
        spare = []
        return batch
    }

    /// A taken batch, once run: its buffer is kept, emptied, for the queue after the next `take`.
    mutating func giveBack(_ batch: consuming [Element]) {
        var emptied = batch
        emptied.removeAll(keepingCapacity: true)
        spare = emptied
    }
}
