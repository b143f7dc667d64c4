import HTTP
import Testing

private func text(_ buffer: [UInt8]) -> String { String(decoding: buffer, as: UTF8.self) }

@Suite("Response head")
struct HTTPResponseHeadTests {
    @Test func serializesStatusLineHeadersAndBlankLine() {
        let head = HTTPResponseHead(status: 200, headers: ["Content-Type": "application/json", "Content-Length": "2"])
        var buffer: [UInt8] = []
        head.serialize(into: &buffer)
        #expect(text(buffer) == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n")
    }

    @Test func appendsToExistingBufferAndHonoursVersion() {
        var buffer = bytes("x")
        HTTPResponseHead(status: 404, versionMinor: 0).serialize(into: &buffer)
        #expect(text(buffer) == "xHTTP/1.0 404 Not Found\r\n\r\n")
    }

    @Test(arguments: [
        (100, "Continue"), (204, "No Content"), (400, "Bad Request"), (411, "Length Required"),
        (413, "Content Too Large"), (414, "URI Too Long"), (429, "Too Many Requests"),
        (431, "Request Header Fields Too Large"), (501, "Not Implemented"), (503, "Service Unavailable"),
        (505, "HTTP Version Not Supported"), (599, ""),
    ])
    func reasonPhrases(status: Int, phrase: String) {
        #expect(HTTPResponseHead.reasonPhrase(status) == phrase)
        #expect(text(HTTPResponseHead(status: status).serialized()) == "HTTP/1.1 \(status) \(phrase)\r\n\r\n")
    }

    @Test func invalidStatusBecomes500() {
        #expect(text(HTTPResponseHead(status: 42).serialized()).hasPrefix("HTTP/1.1 500 Internal Server Error\r\n"))
        #expect(text(HTTPResponseHead(status: 1000).serialized()).hasPrefix("HTTP/1.1 500 "))
    }

    @Test func headerInjectionIsNeutralised() {
        let head = HTTPResponseHead(status: 200, headers: ["X-Echo": "a\r\nSet-Cookie: evil\nb"])
        #expect(text(head.serialized()) == "HTTP/1.1 200 OK\r\nX-Echo: a  Set-Cookie: evil b\r\n\r\n")
    }
}

@Suite("Chunked encoding")
struct ChunkedEncodingTests {
    @Test func chunksAndTerminator() {
        var buffer: [UInt8] = []
        ChunkedEncoding.appendChunk(bytes("hello"), to: &buffer)
        ChunkedEncoding.appendChunk([UInt8](repeating: 0x61, count: 26), to: &buffer)
        ChunkedEncoding.appendChunk([UInt8](), to: &buffer)  // must not emit a premature "0\r\n"
        buffer.append(contentsOf: ChunkedEncoding.terminator)
        #expect(text(buffer) == "5\r\nhello\r\n1a\r\n" + String(repeating: "a", count: 26) + "\r\n0\r\n\r\n")
    }

    @Test func rawBufferOverloadAndLargeSize() {
        var buffer: [UInt8] = []
        let payload = [UInt8](repeating: 0x62, count: 4096)
        payload.withUnsafeBytes { ChunkedEncoding.appendChunk($0, to: &buffer) }
        #expect(text(Array(buffer.prefix(6))) == "1000\r\n")
        #expect(buffer.count == 6 + 4096 + 2)
    }

    /// A chunk encoded in place: whatever the reserved width of its size line, the bytes are the
    /// same as a chunk of the finished payload; an empty payload leaves the buffer as it was.
    @Test(arguments: [0, 1, 15, 16, 255, 256, 4095, 4096, 70_000])
    func inPlaceChunkMatchesTheCopyingEncoder(size: Int) {
        let payload = [UInt8](repeating: 0x63, count: size)
        var expected = bytes("x")
        ChunkedEncoding.appendChunk(payload, to: &expected)
        for hint in [1, 2, 3, 5] {
            var buffer = bytes("x")
            let n = ChunkedEncoding.appendChunk(to: &buffer, widthHint: hint) { $0.append(contentsOf: payload) }
            #expect(n == size)
            #expect(buffer == expected, "size \(size), width hint \(hint)")
        }
    }

    @Test func roundTripsThroughTheParser() throws {
        var raw = bytes("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        ChunkedEncoding.appendChunk(bytes("data: 1\n"), to: &raw)
        ChunkedEncoding.appendChunk(bytes("more"), to: &raw)
        raw += ChunkedEncoding.terminator
        let request = try #require(drive([raw]).requests.first)
        #expect(request.body == bytes("data: 1\nmore"))
    }
}

@Suite("SSE frames")
struct SSEFrameTests {
    private func frame(event: String? = nil, id: String? = nil, data: String) -> String {
        var buffer: [UInt8] = []
        SSEFrame.append(event: event, id: id, data: data, to: &buffer)
        return text(buffer)
    }

    @Test func singleLine() {
        #expect(frame(data: "{\"x\":1}") == "data: {\"x\":1}\n\n")
        #expect(frame(event: "delta", id: "7", data: "hi") == "event: delta\nid: 7\ndata: hi\n\n")
    }

    @Test(arguments: [
        ("a\nb", "data: a\ndata: b\n\n"),
        ("a\r\nb", "data: a\ndata: b\n\n"),
        ("a\rb", "data: a\ndata: b\n\n"),
        ("a\r\n\r\nb", "data: a\ndata: \ndata: b\n\n"),
        ("a\n\rb", "data: a\ndata: \ndata: b\n\n"),
        ("a\r\rb", "data: a\ndata: \ndata: b\n\n"),
        ("end\n", "data: end\ndata: \n\n"),
        ("", "data: \n\n"),
        ("\r\n", "data: \ndata: \n\n"),
    ])
    func multiLineDataIsSplit(data: String, expected: String) {
        #expect(frame(data: data) == expected)
    }

    @Test func eventAndIdCannotInjectFields() {
        #expect(frame(event: "a\nb\rc", id: "1\r\n2\u{0}", data: "x") == "event: abc\nid: 12\ndata: x\n\n")
    }

    @Test func noBareNewlineInsideAField() {
        // Every emitted line starts with a known field prefix; the frame ends with one blank line.
        let out = frame(event: "e", id: "i", data: "l1\rl2\r\nl3\n\nl4")
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.suffix(2) == ["", ""])
        for line in lines.dropLast(2) {
            #expect(line.hasPrefix("data: ") || line.hasPrefix("event: ") || line.hasPrefix("id: "))
            #expect(!line.contains("\r"))
        }
    }

    @Test func comments() {
        var buffer: [UInt8] = []
        SSEFrame.appendComment("ping", to: &buffer)
        #expect(text(buffer) == ": ping\n\n")
        buffer = []
        SSEFrame.appendComment("a\r\nb", to: &buffer)
        #expect(text(buffer) == ": a\n: b\n\n")
    }
}
