import Reactor

/// Log bytes waiting for a slow reader: whole lines only, in order, at most `capacity` bytes.
/// Lines that do not fit are dropped (newest first, so what was kept stays contiguous) and counted.
struct LogBuffer {
    let capacity: Int
    private var bytes: [UInt8] = []
    /// Bytes of `bytes` already written (the first line may have been written in part).
    private var head = 0
    private(set) var droppedLines: UInt64 = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var isEmpty: Bool { head >= bytes.count }
    var count: Int { bytes.count - head }

    /// Takes `batch` (whole lines, each ending in `\n`): the lines that fit, in order, up to the
    /// first that does not; that one and every later one are dropped and counted.
    mutating func enqueue(_ batch: [UInt8]) {
        guard !batch.isEmpty else { return }
        let room = capacity - count
        if batch.count <= room {
            compact()
            bytes.append(contentsOf: batch)
            return
        }
        // The longest prefix of whole lines that fits.
        var end = 0
        var i = 0
        while i < batch.count && i < room {
            if batch[i] == 0x0A { end = i + 1 }
            i += 1
        }
        if end > 0 {
            compact()
            bytes.append(contentsOf: batch[0..<end])
        }
        droppedLines &+= Self.lineCount(batch[end...])
    }

    /// Writes as much as `write` takes. `write` returns bytes written (> 0), 0 when the reader is
    /// full (try later), or -1 when the output is gone: then everything held is dropped and counted.
    /// Returns true when nothing is left.
    @discardableResult
    mutating func drain(_ write: (UnsafeRawBufferPointer) -> Int) -> Bool {
        while head < bytes.count {
            let n = bytes.withUnsafeBytes { write(UnsafeRawBufferPointer(rebasing: $0[head...])) }
            if n > 0 { head += n; continue }
            if n < 0 { dropAll() }
            break
        }
        if head >= bytes.count {
            bytes.removeAll(keepingCapacity: bytes.capacity <= 64 * 1024)
            head = 0
            return true
        }
        return false
    }

    /// Counts what is held as dropped and forgets it (a partly written line counts as one).
    mutating func dropAll() {
        droppedLines &+= Self.lineCount(bytes[head...])
        bytes.removeAll(keepingCapacity: false)
        head = 0
    }

    private mutating func compact() {
        if head > 0 && head >= bytes.count / 2 {
            bytes.removeFirst(head)
            head = 0
        }
    }

    private static func lineCount(_ s: ArraySlice<UInt8>) -> UInt64 {
        var n: UInt64 = 0
        for b in s where b == 0x0A { n += 1 }
        if let last = s.last, last != 0x0A { n += 1 }
        return n
    }
}

extension NonBlockingOutput.WriteResult {
    /// As `LogBuffer.drain` takes it: bytes written (> 0), 0 when the reader is full, -1 when the
    /// output is gone.
    var drainCount: Int {
        switch self {
        case .wrote(let n): n
        case .full: 0
        case .gone: -1
        }
    }
}
