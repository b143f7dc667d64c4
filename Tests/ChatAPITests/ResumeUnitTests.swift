import Testing
@testable import ChatAPI

@Suite struct ResumeUnit {
    @Test func eventPositionsParseOnlyWhatTheStreamSends() {
        let id = "9d070184-7f24-4808-b49f-3d25e4f7a41d"
        #expect(EventPosition("\(id):0") == EventPosition(messageID: id, characters: 0))
        #expect(EventPosition("\(id.uppercased()):42")?.messageID == id)
        for bad in ["", "42", id, "\(id):", "\(id):-1", "\(id):4x", "\(id):12345678901", "nope:3", "\(id):3:4"] {
            #expect(EventPosition(bad) == nil, "\(bad)")
        }
    }

    @Test func nativeEventIdsCountCharactersNotBytes() {
        var wire = NativeWire(messageID: "m")
        var out: [UInt8] = []
        wire.token("é✓", into: &out)
        wire.token("ab", into: &out)
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.contains("id: m:2\nevent: token"))
        #expect(text.contains("id: m:4\nevent: token"))
    }
}
