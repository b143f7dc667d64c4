import Testing
import JSONCore

@Suite struct JSONParserTests {
    @Test func parsesScalarsAndKeepsIntegersExact() throws {
        #expect(try JSONParser.parse("null") == .null)
        #expect(try JSONParser.parse("true") == .bool(true))
        #expect(try JSONParser.parse(" false ") == .bool(false))
        #expect(try JSONParser.parse("9223372036854775807") == .int(Int64.max))
        #expect(try JSONParser.parse("-9223372036854775808") == .int(Int64.min))
        #expect(try JSONParser.parse("9223372036854775808") == .double(9223372036854775808))
        #expect(try JSONParser.parse("1.5e3") == .double(1500))
        #expect(try JSONParser.parse("-0.25") == .double(-0.25))
        #expect(try JSONParser.parse("0") == .int(0))
    }

    @Test func keepsObjectOrderAndAccessors() throws {
        let v = try JSONParser.parse(#"{"b":1,"a":[true,{"x":"y"}],"c":null,"d":2.5}"#)
        #expect(v.object?.map(\.key) == ["b", "a", "c", "d"])
        #expect(v["b"]?.int == 1)
        #expect(v["a"]?[0]?.bool == true)
        #expect(v["a"]?[1]?["x"]?.string == "y")
        #expect(v["c"]?.isNull == true)
        #expect(v["d"]?.double == 2.5)
        #expect(v["missing"] == nil)
        #expect(v["a"]?[5] == nil)
    }

    @Test func toleratesInsignificantWhitespace() throws {
        let v = try JSONParser.parse("{\"type\":\"error\",\"error\":{\"type\":\"x\"} }\r\n\t ")
        #expect(v["error"]?["type"]?.string == "x")
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let v = try JSONParser.parse(#""a\"b\\c\/d\b\f\n\r\t\u00e9\u20AC\ud83d\ude00""#)
        #expect(v.string == "a\"b\\c/d\u{8}\u{c}\n\r\té€😀")
        #expect(try JSONParser.parse("\"héllo 😀\"").string == "héllo 😀")
    }

    @Test func roundTripsThroughWriter() throws {
        let text = #"{"s":"q\"\\\n\u0001é😀","i":-42,"d":0.7,"big":1e300,"a":[null,true,false,[],{}],"o":{"k":"v"}}"#
        let v = try JSONParser.parse(text)
        let again = try JSONParser.parse(v.jsonBytes)
        #expect(again == v)
        #expect(v.jsonString.contains(#""s":"q\"\\\n\u0001é😀""#))
    }

    @Test(arguments: [
        "", " ", "{", "[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "{a:1}", "01", "1.", ".5", "-", "1e", "+1",
        "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\uZZZZ\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"",
        "\"tab\there\"", "tru", "nul", "[1]x", "{}{}", "\"\u{7F}\"x", "NaN", "[", "{\"a\":}",
    ])
    func rejectsInvalidJSON(_ text: String) {
        #expect(throws: JSONError.self) { try JSONParser.parse(text) }
    }

    @Test func rejectsInvalidUTF8() {
        let cases: [[UInt8]] = [
            [0x22, 0xC3, 0x22],             // truncated 2-byte sequence
            [0x22, 0xC0, 0xAF, 0x22],       // overlong
            [0x22, 0xED, 0xA0, 0x80, 0x22], // encoded surrogate
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], // above U+10FFFF
            [0x22, 0xFF, 0x22],
        ]
        for bytes in cases {
            #expect(throws: JSONError.self) { try JSONParser.parse(bytes) }
        }
    }

    @Test func limitsDepthWithoutCrashing() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        do {
            _ = try JSONParser.parse(deep)
            Issue.record("expected a depth error")
        } catch {
            #expect(error.kind == .tooDeep)
        }
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try JSONParser.parse(ok) }
    }

    @Test func errorsCarryOffsets() {
        do {
            _ = try JSONParser.parse("[1, 2, x]")
            Issue.record("expected an error")
        } catch {
            #expect(error.offset == 7)
            #expect(error.description.contains("byte 7"))
        }
    }

    @Test func truncatedDocumentsAllFail() throws {
        let text = Array(#"{"a":[1,2.5,"x\u00e9y",{"b":null,"c":true}],"d":"é"}"#.utf8)
        _ = try JSONParser.parse(text)
        for cut in 0..<text.count {
            #expect(throws: JSONError.self) { try JSONParser.parse(Array(text[0..<cut])) }
        }
    }
}
