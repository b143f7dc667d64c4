/// Bytes waiting to go out on one socket, with high/low watermarks (NIO defaults 64/32 KiB):
/// past `highWater` the owner is told to stop producing (pause the upstream transfer), and when the
/// backlog falls below `lowWater` it is told to go on. `hardLimit` is the slow-consumer cut-off
/// (redis' client-output-buffer-limit): the connection is closed rather than grow without bound.
public struct OutboundBuffer {
    public let highWater: Int
    public let lowWater: Int
    public let hardLimit: Int
    /// Keeps up to 4 KiB when drained: a pass's frames for one stream (a few hundred bytes each, more
    /// when a burst of tokens arrives at once) then reuse one allocation instead of a malloc and a
    /// free per pass. A held stream's frames stay far below it; the larger allocation its
    /// response head needed is given up on a later drain (`ByteBuffer.fitsCapacityToUse`).
    private(set) var bytes: ByteBuffer = {
        var b = ByteBuffer(keepsCapacity: 4 * 1024)
        b.fitsCapacityToUse = true
        return b
    }()
    /// False between crossing `highWater` and draining below `lowWater`.
    public private(set) var isWritable = true

    public init(highWater: Int = 64 * 1024, lowWater: Int = 32 * 1024, hardLimit: Int = 4 * 1024 * 1024) {
        precondition(lowWater <= highWater && highWater <= hardLimit)
        self.highWater = highWater
        self.lowWater = lowWater
        self.hardLimit = hardLimit
    }

    public var pending: Int { bytes.count }
    public var isEmpty: Bool { bytes.isEmpty }
    public var overLimit: Bool { bytes.count > hardLimit }

    /// Appends; returns true when this append made the buffer unwritable.
    @discardableResult
    public mutating func append(_ data: UnsafeRawBufferPointer) -> Bool {
        bytes.append(data)
        return checkHigh()
    }

    @discardableResult
    public mutating func append(_ s: String) -> Bool {
        bytes.append(s)
        return checkHigh()
    }

    @discardableResult
    public mutating func append<S: Sequence>(contentsOf s: S) -> Bool where S.Element == UInt8 {
        bytes.append(contentsOf: s)
        return checkHigh()
    }

    /// Lets `encode` append to the end of the buffer in place; returns true when this made the
    /// buffer unwritable.
    @discardableResult
    public mutating func append(encoding encode: (inout [UInt8]) -> Void) -> Bool {
        bytes.appendInPlace(encode)
        return checkHigh()
    }

    private mutating func checkHigh() -> Bool {
        if isWritable && bytes.count >= highWater {
            isWritable = false
            return true
        }
        return false
    }

    /// Marks `n` bytes as sent; returns true when this made the buffer writable again.
    @discardableResult
    public mutating func consume(_ n: Int) -> Bool {
        bytes.consume(n)
        if !isWritable && bytes.count <= lowWater {
            isWritable = true
            return true
        }
        return false
    }

    public func withPendingBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnreadBytes(body)
    }

    public mutating func removeAll() { bytes.removeAll() }
}
