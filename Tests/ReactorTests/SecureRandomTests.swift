import Testing
@testable import Reactor

@Suite struct SecureRandomTests {
    /// Ids drawn across several pool refills never repeat: no byte is handed out twice.
    @Test func idsAreUniqueAcrossRefills() {
        var seen = Set<[UInt8]>()
        for _ in 0..<5_000 { seen.insert(SecureRandom.bytes(12)) }
        #expect(seen.count == 5_000)
    }

    @Test func largeRequestsAreServedDirectly() {
        let a = SecureRandom.bytes(8_192)
        let b = SecureRandom.bytes(8_192)
        #expect(a.count == 8_192 && a != b)
        #expect(Set(a).count > 200, "random bytes cover most values")
    }
}
