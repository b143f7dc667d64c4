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
