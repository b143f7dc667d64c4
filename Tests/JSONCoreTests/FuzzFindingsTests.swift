import Testing
import JSONCore

/// Regressions for bugs the JSON fuzz target (Fuzz/JSONParserFuzz.swift) found.
@Suite struct FuzzFindingsTests {
    /// The writer kept its "container already has a member" flags in one 64-bit word indexed by
    /// depth modulo 64, so an empty container at depth 65 cleared depth 1's flag and the next
    /// member at depth 1 lost its comma: invalid JSON. Reachable without a custom depth limit
    /// once a request builder nests a 64-deep client value inside its own envelope.
    @Test func writesCommasBelowDepth64() throws {
        for depth in [63, 64, 65, 66, 129, 130] {
            let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth - 1) + ",1]"
            let value = try JSONParser.parse(text, maxDepth: 200)
            #expect(value.jsonString == text, "depth \(depth)")
            #expect(try JSONParser.parse(value.jsonBytes, maxDepth: 200) == value)
        }
        let objects = String(repeating: #"{"a":"#, count: 65) + "{}" + String(repeating: "}", count: 64) + #","b":2}"#
        #expect(try JSONParser.parse(objects, maxDepth: 200).jsonString == objects)
    }

    @Test func writerNestsDeepValuesInsideItsOwnEnvelope() throws {
        var inner = JSONValue.array([])
        for _ in 0..<63 { inner = .array([inner]) }
        var w = JSONWriter()
        w.beginObject()
        w.key("wrap"); w.beginArray(); w.value(inner); w.endArray()
        w.field("after", 1)
        w.endObject()
        let reread = try JSONParser.parse(w.bytes, maxDepth: 100)
        #expect(reread["after"]?.int == 1)
    }

    /// For each member of a top-level object: whether its name `==` the literal "K" and "é".
    static func nameMatches(_ json: String) -> [(kelvin: Bool, eAcute: Bool)] {
        Array(json.utf8).withUnsafeBytes { raw in
            var s = JSONScanner(raw)
            var matches: [(kelvin: Bool, eAcute: Bool)] = []
            do throws(JSONError) {
                try s.beginObject()
                while let key = try s.nextKey() {
                    matches.append((key == "K", key == "\u{E9}"))
                    try s.skipValue()
                }
            } catch {
                return []
            }
            return matches
        }
    }

    /// Member names compare by code units (RFC 8259 §8.3). `String ==` uses canonical equivalence,
    /// so an escaped Kelvin sign matched "K" and an escaped "e" + combining acute matched "é",
    /// while the same names written raw did not.
    @Test func memberNamesCompareByCodeUnits() throws {
        let matches = Self.nameMatches(#"{"\u212A":1,"K":2,"e\u0301":3,"\u00e9":4}"#)
        #expect(matches.map(\.kelvin) == [false, true, false, false])
        #expect(matches.map(\.eAcute) == [false, false, false, true])
        let tree = try JSONParser.parse(#"{"\u212A":1,"K":2}"#)
        #expect(tree["K"]?.int == 2)
        #expect(JSONValue.string("e\u{301}") != JSONValue.string("\u{E9}"))
        #expect(JSONValue.object([(key: "e\u{301}", value: .null)]) != JSONValue.object([(key: "\u{E9}", value: .null)]))
    }
}
