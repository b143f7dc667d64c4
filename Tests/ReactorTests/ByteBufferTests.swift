import Reactor
import Testing

@Suite struct ByteBufferTests {
    /// An outbound buffer that grew for a response head does not keep that allocation while it
    /// carries one small frame at a time (Sources/Reactor/OutboundBuffer.swift).
    @Test func aDrainedBufferGivesUpCapacityItsBytesHardlyUsed() {
        var b = ByteBuffer(keepsCapacity: 4096)
        b.fitsCapacityToUse = true
        b.append(contentsOf: [UInt8](repeating: 1, count: 2000))
        b.consume(2000)
        #expect(b.storage.capacity >= 2000)  // well used: kept
        b.append(contentsOf: [UInt8](repeating: 2, count: 100))
        b.consume(100)
        #expect(b.storage.capacity == 0)  // 100 bytes in 2 KB: freed
        b.append(contentsOf: [UInt8](repeating: 3, count: 100))
        let small = b.storage.capacity
        b.consume(100)
        #expect(small > 0 && b.storage.capacity == small)  // small: kept
    }

    @Test func otherBuffersKeepTheirCapacityUpToTheLimit() {
        var b = ByteBuffer(keepsCapacity: 4096)
        b.append(contentsOf: [UInt8](repeating: 1, count: 2000))
        b.consume(2000)
        b.append(contentsOf: [UInt8](repeating: 2, count: 100))
        b.consume(100)
        #expect(b.storage.capacity >= 2000)
    }
}
