import Testing
import JSONCore

@Suite struct JSONWriterTests {
    @Test func escapesOnlyWhatJSONRequires() {
        var out: [UInt8] = []
        JSON.appendEscaped("plain é 😀 \"q\" \\ \n\r\t\u{1}\u{1F}/", to: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"plain é 😀 \"q\" \\ \n\r\t\u0001\u001f/"#)
    }

    @Test func writesNestedStructuresWithCommas() {
        var w = JSONWriter()
        w.beginObject()
        w.field("model", "m")
        w.key("messages")
        w.beginArray()
        w.beginObject(); w.field("role", "user"); w.field("content", "hi"); w.endObject()
        w.beginObject(); w.endObject()
        w.endArray()
        w.field("n", 3)
        w.field("t", 0.7)
        w.field("one", 1.0)
        w.field("b", true)
        w.key("z"); w.null()
        w.endObject()
        #expect(String(decoding: w.bytes, as: UTF8.self)
            == #"{"model":"m","messages":[{"role":"user","content":"hi"},{}],"n":3,"t":0.7,"one":1,"b":true,"z":null}"#)
    }

    @Test func writesIntegersExactly() {
        for value: Int64 in [0, 7, -7, 1234567890, Int64.max, Int64.min] {
            var out: [UInt8] = []
            JSON.appendInt(value, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == String(value))
        }
    }

    @Test func nonFiniteDoublesBecomeNull() {
        #expect(JSONValue.double(.infinity).jsonString == "null")
        #expect(JSONValue.double(.nan).jsonString == "null")
    }
}
