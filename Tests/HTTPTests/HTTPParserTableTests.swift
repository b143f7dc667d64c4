import HTTP
import Testing

/// One wire input and what the parser must make of it, however the input is split into reads.
struct ParserCase: Sendable, CustomTestStringConvertible {
    let name: String
    let raw: String
    /// nil: every request parses; otherwise the status of the final `.failed`.
    let status: Int?
    /// Number of complete requests expected before the end (or before the failure).
    let requests: Int

    init(_ name: String, _ raw: String, status: Int? = nil, requests: Int? = nil) {
        self.name = name
        self.raw = raw
        self.status = status
        self.requests = requests ?? (status == nil ? 1 : 0)
    }

    var testDescription: String { name }
}

private let longTarget = "/" + String(repeating: "a", count: 64)  // 65 bytes > maxURIBytes 64
private let okTarget = "/" + String(repeating: "a", count: 63)  // exactly 64

let parserCases: [ParserCase] = [
    // Valid requests.
    ParserCase("simple GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ParserCase("bare LF line ends", "GET /x?y=1 HTTP/1.1\nHost: a\n\n"),
    ParserCase("mixed line ends", "GET / HTTP/1.1\r\nHost: a\n\r\n"),
    ParserCase("HTTP/1.0", "GET / HTTP/1.0\r\n\r\n"),
    ParserCase("HTTP/1.2 handled as 1.1", "GET / HTTP/1.2\r\n\r\n"),
    ParserCase("no headers", "GET / HTTP/1.1\r\n\r\n"),
    ParserCase("POST with Content-Length", "POST /v1/chat HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
    ParserCase("POST Content-Length 0", "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
    ParserCase("duplicate equal Content-Length", "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
    ParserCase("Content-Length list of equal values", "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc"),
    ParserCase("GET with body", "GET / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"),
    ParserCase("chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
    ParserCase("chunked, case-insensitive coding", "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"),
    ParserCase("chunked with extension and trailers",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nA;name=val\r\n0123456789\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n"),
    ParserCase("chunked, bare LF", "POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n"),
    ParserCase("chunked, empty body", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ParserCase("Expect 100-continue", "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx"),
    ParserCase("leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
    ParserCase("other method", "PROPFIND /dav HTTP/1.1\r\n\r\n"),
    ParserCase("absolute-form target", "GET http://example.com/p?q=1 HTTP/1.1\r\n\r\n"),
    ParserCase("asterisk-form", "OPTIONS * HTTP/1.1\r\n\r\n"),
    ParserCase("target at URI limit", "GET \(okTarget) HTTP/1.1\r\n\r\n"),
    ParserCase("header value with tab and obs-text", "GET / HTTP/1.1\r\nX: a\tb \u{e9}\r\n\r\n"),
    ParserCase("empty header value", "GET / HTTP/1.1\r\nX:\r\n\r\n"),
    ParserCase("five headers (limit)", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n"),
    ParserCase("body of exactly maxBodyBytes",
        "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + String(repeating: "b", count: 100)),
    ParserCase("pipelined three",
        "GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\n\r\n", requests: 3),
    ParserCase("pipelined with chunked in the middle",
        "GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\nGET /3 HTTP/1.1\r\n\r\n",
        requests: 3),

    // Request line (400 / 414 / 505).
    ParserCase("missing version", "GET /\r\n\r\n", status: 400),
    ParserCase("trailing space after version", "GET / HTTP/1.1 \r\n\r\n", status: 400),
    ParserCase("double space", "GET  / HTTP/1.1\r\n\r\n", status: 400),
    ParserCase("leading space", " GET / HTTP/1.1\r\n\r\n", status: 400),
    ParserCase("tab separator", "GET\t/ HTTP/1.1\r\n\r\n", status: 400),
    ParserCase("lowercase HTTP", "GET / http/1.1\r\n\r\n", status: 400),
    ParserCase("version without minor", "GET / HTTP/1\r\n\r\n", status: 400),
    ParserCase("garbage version", "GET / HTTP/1.x\r\n\r\n", status: 400),
    ParserCase("long version", "GET / HTTP/1.10\r\n\r\n", status: 400),
    ParserCase("bad method char", "G(T / HTTP/1.1\r\n\r\n", status: 400),
    ParserCase("method too long", String(repeating: "M", count: 40) + " / HTTP/1.1\r\n\r\n", status: 400),
    ParserCase("control char in target", "GET /\u{01} HTTP/1.1\r\n\r\n", status: 400),
    ParserCase("non-ASCII in target", "GET /\u{e9} HTTP/1.1\r\n\r\n", status: 400),
    ParserCase("CR inside request line", "GET /\r HTTP/1.1\r\n\r\n", status: 400),
    ParserCase("binary garbage", "\u{00}\u{01}\u{02}\r\n\r\n", status: 400),
    ParserCase("too many leading empty lines", String(repeating: "\r\n", count: 17) + "GET / HTTP/1.1\r\n\r\n", status: 400),
    ParserCase("HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", status: 505),
    ParserCase("HTTP/3", "GET / HTTP/3\r\n\r\n", status: 505),
    ParserCase("HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", status: 505),
    ParserCase("URI too long", "GET \(longTarget) HTTP/1.1\r\n\r\n", status: 414),
    ParserCase("URI too long, no version", "GET \(longTarget)\r\n\r\n", status: 414),

    // Header lines (400 / 431).
    ParserCase("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", status: 400),
    ParserCase("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", status: 400),
    ParserCase("no colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", status: 400),
    ParserCase("empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n", status: 400),
    ParserCase("obs-fold", "GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n", status: 400),
    ParserCase("obs-fold with tab", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", status: 400),
    ParserCase("first header line starts with space", "GET / HTTP/1.1\r\n X: a\r\n\r\n", status: 400),
    ParserCase("NUL in header value", "GET / HTTP/1.1\r\nX: a\u{00}b\r\n\r\n", status: 400),
    ParserCase("bare CR in header value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", status: 400),
    ParserCase("DEL in header value", "GET / HTTP/1.1\r\nX: a\u{7f}\r\n\r\n", status: 400),
    ParserCase("non-token header name", "GET / HTTP/1.1\r\nX(y): a\r\n\r\n", status: 400),
    ParserCase("header block too large",
        "GET / HTTP/1.1\r\nX: " + String(repeating: "v", count: 260) + "\r\n\r\n", status: 431),
    ParserCase("header block too large over several lines",
        "GET / HTTP/1.1\r\n" + String(repeating: "X: " + String(repeating: "v", count: 60) + "\r\n", count: 5) + "\r\n",
        status: 431),
    ParserCase("too many headers", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\n\r\n", status: 431),

    // Framing (400 / 411 / 413 / 501).
    ParserCase("Content-Length not a number", "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", status: 400),
    ParserCase("negative Content-Length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", status: 400),
    ParserCase("Content-Length with plus", "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx", status: 400),
    ParserCase("empty Content-Length", "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", status: 400),
    ParserCase("Content-Length with space inside", "POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", status: 400),
    ParserCase("conflicting Content-Length fields",
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", status: 400),
    ParserCase("conflicting Content-Length list", "POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\nabcd", status: 400),
    ParserCase("Content-Length list with empty element", "POST / HTTP/1.1\r\nContent-Length: 3,\r\n\r\nabc", status: 400),
    ParserCase("Content-Length over limit", "POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", status: 413),
    ParserCase("Content-Length overflowing Int",
        "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n", status: 413),
    ParserCase("Transfer-Encoding and Content-Length",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", status: 400),
    ParserCase("Transfer-Encoding gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", status: 501),
    ParserCase("Transfer-Encoding gzip, chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 501),
    ParserCase("chunked twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", status: 400),
    ParserCase("empty Transfer-Encoding", "POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n", status: 400),
    ParserCase("Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400),
    ParserCase("POST without length", "POST / HTTP/1.1\r\n\r\n", status: 411),
    ParserCase("PUT without length", "PUT / HTTP/1.1\r\nHost: a\r\n\r\n", status: 411),
    ParserCase("PATCH without length", "PATCH / HTTP/1.1\r\n\r\n", status: 411),

    // Chunked bodies (400 / 413 / 431).
    ParserCase("bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", status: 400),
    ParserCase("empty chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", status: 400),
    ParserCase("negative chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", status: 400),
    ParserCase("junk after chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n", status: 400),
    ParserCase("chunk data too long", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", status: 400),
    ParserCase("chunk size over limit", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", status: 413),
    ParserCase("chunk size overflowing Int",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffffff\r\n", status: 413),
    ParserCase("chunks summing over limit",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n" + String(repeating: "x", count: 50)
            + "\r\n33\r\n", status: 413),
    ParserCase("chunk size line too long",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + String(repeating: "e", count: 1100) + "\r\n",
        status: 400),
    ParserCase("trailers too large",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " + String(repeating: "t", count: 300) + "\r\n\r\n",
        status: 431),

    // A failure after a good request: the first is still delivered.
    ParserCase("good then bad", "GET / HTTP/1.1\r\n\r\nGET / HTTP/9.9\r\n\r\n", status: 505, requests: 1),
]

@Suite("Request parser table")
struct HTTPParserTableTests {
    @Test(arguments: parserCases)
    func wholeSplitAndByteByByteAgree(_ testCase: ParserCase) {
        let raw = bytes(testCase.raw)
        let whole = drive([raw])
        #expect(whole.violations.isEmpty, "\(whole.violations)")
        #expect(whole.requests.count == testCase.requests)
        #expect(whole.failureStatus == testCase.status)
        if testCase.status == nil {
            #expect(whole.leftover.isEmpty, "unconsumed bytes left")
        }

        // Every two-part split.
        for cut in 0...raw.count {
            let split = drive([Array(raw[..<cut]), Array(raw[cut...])])
            #expect(split.results == whole.results && split.violations.isEmpty, "split at \(cut) differs")
            if split.results != whole.results { break }  // one report per case is enough
        }

        // One byte at a time.
        let trickle = drive(raw.map { [$0] })
        #expect(trickle.results == whole.results && trickle.violations.isEmpty, "byte-by-byte differs")
    }
}
