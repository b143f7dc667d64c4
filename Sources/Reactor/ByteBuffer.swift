/// A growable byte queue with a read cursor: bytes are appended at the end and consumed from the
/// front without shifting until the consumed prefix is large (amortised O(1) per byte).
public struct ByteBuffer {
    public private(set) var storage: [UInt8] = []
    public private(set) var readIndex = 0

    /// Capacity kept when the buffer empties: enough for a request or a few frames, small enough
    /// that ten thousand idle streams do not each pin a large allocation.
    public static let keptCapacity = 1024

    /// Capacity kept when the buffer empties (at most). A buffer that grew past it is freed on the
    /// drain and grows again from nothing on the next append.
    public var keepsCapacity: Int

    /// Also drop, when the buffer empties, a capacity the bytes it just held used less than half
    /// of (above `ByteBuffer.smallCapacity`). A held stream's outbound buffer grows once for its
    /// response head, then carries one small frame a second: kept, the head's allocation would
    /// stay with it for as long as the stream is open. A steady flow of similar frames keeps its
    /// allocation as before.
    public var fitsCapacityToUse = false
    /// Never worth freeing on a drain.
    public static let smallCapacity = 512

    public init(keepsCapacity: Int = ByteBuffer.keptCapacity) { self.keepsCapacity = keepsCapacity }
    public init(capacity: Int) {
        keepsCapacity = ByteBuffer.keptCapacity
        storage.reserveCapacity(capacity)
    }

    public var count: Int { storage.count - readIndex }
    public var isEmpty: Bool { storage.count == readIndex }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        storage.append(contentsOf: bytes.bindMemory(to: UInt8.self))
    }
    public mutating func append<S: Sequence>(contentsOf bytes: S) where S.Element == UInt8 {
        storage.append(contentsOf: bytes)
    }
    public mutating func append(_ string: String) {
        var s = string
        s.withUTF8 { storage.append(contentsOf: $0) }
    }
    public mutating func append(_ byte: UInt8) { storage.append(byte) }

    /// Lets an encoder append straight to the end of the storage (no staging array, no second
    /// copy). It must only append: bytes before the end on entry are not its to change.
    public mutating func appendInPlace<R>(_ body: (inout [UInt8]) throws -> R) rethrows -> R {
        try body(&storage)
    }

    /// Consumes `n` bytes from the front.
    public mutating func consume(_ n: Int) {
        readIndex += min(n, count)
        if readIndex == storage.count {
            // `storage.count`: every byte appended since the last drain (or compaction).
            let cap = storage.capacity
            let keep = cap <= keepsCapacity
                && (!fitsCapacityToUse || cap <= ByteBuffer.smallCapacity || cap <= 2 * storage.count)
            storage.removeAll(keepingCapacity: keep)
            readIndex = 0
        } else if readIndex >= 32 * 1024 && readIndex * 2 >= storage.count {
            storage.removeSubrange(0..<readIndex)
            readIndex = 0
        }
    }

    public mutating func removeAll() {
        storage.removeAll(keepingCapacity: storage.capacity <= keepsCapacity)
        readIndex = 0
    }

    /// Frees the storage when nothing is left to read: for a buffer that will stay unused a long
    /// while (a request's read buffer while its answer streams).
    public mutating func releaseIfEmpty() {
        guard isEmpty, storage.capacity > 0 else { return }
        storage = []
        readIndex = 0
    }

    /// Unread bytes, valid only inside the closure.
    public func withUnreadBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[readIndex...])) }
    }

    public var unreadBytes: ArraySlice<UInt8> { storage[readIndex...] }
}
