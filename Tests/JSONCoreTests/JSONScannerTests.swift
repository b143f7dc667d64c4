import Testing
import JSONCore

@Suite struct JSONScannerTests {
    @Test func readsSelectedMembersAndSkipsTheRest() throws {
        let text = Array(#"{"skip":{"deep":[1,{"x":"\u00e9"}]},"choices":[{"delta":{"content":"Hi"}}],"n":5}"#.utf8)
        var content: String?
        var n: Int64?
        try text.withUnsafeBytes { raw in
            var s = JSONScanner(raw)
            try s.beginObject()
            while let key = try s.nextKey() {
                if key == "choices" {
                    try s.beginArray()
                    while try s.nextElement() {
                        try s.beginObject()
                        while let k = try s.nextKey() {
                            if k == "delta" {
                                try s.beginObject()
                                while let k2 = try s.nextKey() {
                                    if k2 == "content" { content = try s.readStringOrNull() } else { try s.skipValue() }
                                }
                            } else { try s.skipValue() }
                        }
                    }
                } else if key == "n" {
                    n = try s.readInt()
                } else {
                    try s.skipValue()
                }
            }
            try s.finish()
        }
        #expect(content == "Hi")
        #expect(n == 5)
    }

    /// Strings are scanned a word at a time: every kind of byte that needs a look must be caught
    /// wherever it sits in the word, including right before or after a word boundary and in the
    /// byte-wise tail, and two of them in one word must both be judged.
    @Test func everyByteNeedingALookIsFoundAtEveryOffset() throws {
        let cases: [(bytes: [UInt8], valid: Bool, decoded: String?)] = [
            (Array(#"\""#.utf8), true, "\""),
            (Array(#"\\"#.utf8), true, "\\"),
            (Array(#"\u00e9"#.utf8), true, "\u{e9}"),
            ([0xC3, 0xA9], true, "\u{e9}"),
            ([0xF0, 0x9F, 0x98, 0x80], true, "\u{1F600}"),
            ([0x7F], true, "\u{7F}"),
            ([0x1F], false, nil),
            ([0x00], false, nil),
            ([0x0A], false, nil),
            ([0xC3], false, nil),
            ([0xED, 0xA0, 0x80], false, nil),
            ([0xFF], false, nil),
            (Array(#"\x"#.utf8), false, nil),
            (Array(#"\ud800"#.utf8), false, nil),
        ]
        for (special, valid, decoded) in cases {
            for before in 0..<20 {
                for after in [0, 1, 7, 8, 9] {
                    let inner = Array(repeating: UInt8(ascii: "a"), count: before) + special + Array(repeating: UInt8(ascii: "b"), count: after)
                    let doc = [UInt8(ascii: "\"")] + inner + [UInt8(ascii: "\"")]
                    let result: String? = doc.withUnsafeBytes { raw in
                        var s = JSONScanner(raw)
                        do {
                            let value = try s.readString()
                            try s.finish()
                            return value
                        } catch {
                            return nil
                        }
                    }
                    let context = "special \(special) after \(before) bytes, \(after) bytes after"
                    #expect((result != nil) == valid, "\(context)")
                    if let decoded {
                        let expected = String(repeating: "a", count: before) + decoded + String(repeating: "b", count: after)
                        #expect(result == expected, "\(context)")
                    }
                    // Cut right after the special bytes: never a complete string.
                    let cut = [UInt8(ascii: "\"")] + Array(repeating: UInt8(ascii: "a"), count: before) + special
                    #expect(throws: JSONError.self, "\(context), unterminated") {
                        try cut.withUnsafeBytes { raw in
                            var s = JSONScanner(raw)
                            _ = try s.readString()
                        }
                    }
                }
            }
        }
        // Two bytes needing a look in one word (a quote right after an escape, a non-ASCII byte
        // right after a control byte) must each be judged.
        let pairs: [(String, Bool)] = [(#""ab\"cd""#, true), (#""ab\\"#, false), ("\"ab\u{1}é\"", false), ("\"é\u{1}\"", false)]
        for (text, valid) in pairs {
            let bytes = Array(text.utf8)
            let ok = bytes.withUnsafeBytes { raw in
                var s = JSONScanner(raw)
                do { try s.skipValue(); try s.finish(); return true } catch { return false }
            }
            #expect(ok == valid, "\(text)")
        }
    }

    @Test func skippingStillValidates() {
        let bad = Array(#"{"skip":"\ud800","x":1}"#.utf8)
        #expect(throws: JSONError.self) {
            try bad.withUnsafeBytes { raw in
                var s = JSONScanner(raw)
                try s.skipValue()
            }
        }
    }

    @Test func escapedKeysStillMatch() throws {
        let text = Array(#"{"cont\u0065nt":"x"}"#.utf8)
        let matched = try text.withUnsafeBytes { raw in
            var s = JSONScanner(raw)
            try s.beginObject()
            guard let key = try s.nextKey() else { return false }
            return key == "content"
        }
        #expect(matched)
    }

    @Test func typeMismatchIsAnError() {
        let text = Array(#"{"n":"5"}"#.utf8)
        #expect(throws: JSONError.self) {
            try text.withUnsafeBytes { raw in
                var s = JSONScanner(raw)
                try s.beginObject()
                _ = try s.nextKey()
                _ = try s.readInt()
            }
        }
    }
}
