import HTTP
import Testing

@Suite("Request parser details")
struct HTTPParserTests {
    private func single(_ raw: String, limits: HTTPParserLimits = testLimits) -> HTTPRequest? {
        let outcome = drive([bytes(raw)], limits: limits)
        return outcome.requests.count == 1 ? outcome.requests[0] : nil
    }

    @Test func simpleGetFields() throws {
        let request = try #require(single("GET /v1/models?limit=2&x HTTP/1.1\r\nHost: relay\r\nX-A: 1\r\nx-a:  2 \r\n\r\n"))
        #expect(request.head.method == .get)
        #expect(request.head.target == "/v1/models?limit=2&x")
        #expect(request.head.path == "/v1/models")
        #expect(request.head.query == "limit=2&x")
        #expect(request.head.versionMinor == 1)
        #expect(request.head.keepAlive)
        #expect(!request.head.expectsContinue)
        #expect(request.head.contentLength == nil)
        #expect(!request.head.isChunked)
        #expect(request.body.isEmpty)
        #expect(request.head.headers["host"] == "relay")
        #expect(request.head.headers.values("X-A") == ["1", "2"])  // OWS trimmed, order kept
        #expect(request.head.headers.count == 3)
    }

    @Test func noBodyYieldsRequestWithoutHead() {
        let outcome = drive([bytes("DELETE /x HTTP/1.1\r\n\r\n")])
        #expect(outcome.results.count == 1)
        #expect(outcome.results.first?.request?.head.method == .delete)
    }

    @Test func bodyEmitsHeadOnceThenRequest() throws {
        let raw = bytes("POST /c HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-Continue\r\n\r\nhello")
        for chunks in [[raw], raw.map { [$0] }] {
            let outcome = drive(chunks)
            #expect(outcome.results.count == 2)
            let head = try #require(outcome.results.first?.head)
            #expect(head.contentLength == 5)
            #expect(head.expectsContinue)
            let request = try #require(outcome.results.last?.request)
            #expect(request.body == bytes("hello"))
            #expect(request.head == head)
        }
    }

    @Test func headIsEmittedBeforeBodyArrives() {
        var parser = HTTPRequestParser(limits: testLimits)
        let head = bytes("PUT /f HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        let (consumed, result) = head.withUnsafeBytes { parser.parse($0) }
        #expect(consumed == head.count)
        #expect(result.head?.expectsContinue == true)
        let (none, more) = [UInt8]().withUnsafeBytes { parser.parse($0) }
        #expect(none == 0 && more == .needMore)
        let (three, done) = bytes("abc").withUnsafeBytes { parser.parse($0) }
        #expect(three == 3)
        #expect(done.request?.body == bytes("abc"))
    }

    @Test func expectContinueIgnoredWithoutBody() throws {
        let request = try #require(single("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"))
        #expect(!request.head.expectsContinue)
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true),
        ("GET / HTTP/1.0\r\n\r\n", false),
        ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
        ("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false),
        ("GET / HTTP/1.0\r\nConnection: close\r\n\r\n", false),
    ])
    func keepAlive(raw: String, expected: Bool) throws {
        let request = try #require(single(raw))
        #expect(request.head.keepAlive == expected)
    }

    @Test func chunkedBodyIsDecoded() throws {
        let raw = "POST /s HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "4;ext=\"x\"\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n"
        let outcome = drive([bytes(raw)])
        let head = try #require(outcome.results.first?.head)
        #expect(head.isChunked)
        #expect(head.contentLength == nil)
        let request = try #require(outcome.requests.first)
        #expect(String(decoding: request.body, as: UTF8.self) == "Wikipedia in\r\n\r\nchunks.")
        #expect(outcome.leftover.isEmpty)
        // Trailers are skipped, not merged into the head.
        #expect(!request.head.headers.contains("Expires"))
    }

    @Test func pipelinedRequestsKeepOrderAndLeaveTheRest() {
        let raw = "GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nokGET /3 HTTP/1.1\r\nHo"
        let outcome = drive([bytes(raw)])
        #expect(outcome.requests.map(\.head.path) == ["/1", "/2"])
        #expect(outcome.requests[1].body == bytes("ok"))
        // The incomplete third request stays in the caller's buffer, minus the lines already
        // folded into the parser (its request line): only the partial header line remains.
        #expect(outcome.leftover == bytes("Ho"))
    }

    @Test func pipelinedRequestsInOneCallAreReturnedOneAtATime() {
        var parser = HTTPRequestParser()
        let raw = bytes("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        let (first, r1) = raw.withUnsafeBytes { parser.parse($0) }
        #expect(first == 19)
        #expect(r1.request?.head.path == "/a")
        let rest = Array(raw[first...])
        let (second, r2) = rest.withUnsafeBytes { parser.parse($0) }
        #expect(second == rest.count)
        #expect(r2.request?.head.path == "/b")
        #expect(parser.isIdle)
    }

    @Test func uriTooLongIsDetectedBeforeTheLineEnds() {
        let partial = bytes("GET /" + String(repeating: "a", count: 64))  // no SP, no LF yet
        #expect(drive([partial]).failureStatus == 414)
        #expect(drive([Array(partial.dropLast())]).failureStatus == nil)
        // Same with default limits, byte by byte.
        let big = bytes("GET /" + String(repeating: "a", count: 8192))
        #expect(drive(big.map { [$0] }, limits: HTTPParserLimits()).failureStatus == 414)
    }

    @Test func headerBlockTooLargeIsDetectedBeforeItEnds() {
        let partial = bytes("GET / HTTP/1.1\r\nA: " + String(repeating: "v", count: 300))
        #expect(drive([partial]).failureStatus == 431)
        let endless = bytes("GET / HTTP/1.1\r\n" + String(repeating: "A: b\r\n", count: 3))
            + bytes("X: " + String(repeating: "y", count: 250))
        #expect(drive([endless]).failureStatus == 431)
    }

    @Test func chunkedBodyTooLargeIsDetectedWhileReceiving() {
        let raw = bytes("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + String(repeating: "x", count: 64) + "\r\n40\r\n")
        let outcome = drive([raw])
        #expect(outcome.results.first?.head != nil)
        #expect(outcome.failureStatus == 413)
    }

    @Test func failedParserStaysFailed() {
        var parser = HTTPRequestParser()
        let bad = bytes("GET / HTTP/2.0\r\n\r\n")
        let (_, r1) = bad.withUnsafeBytes { parser.parse($0) }
        #expect(r1.failureStatus == 505)
        let good = bytes("GET / HTTP/1.1\r\n\r\n")
        let (consumed, r2) = good.withUnsafeBytes { parser.parse($0) }
        #expect(consumed == 0)
        #expect(r2.failureStatus == 505)
    }

    @Test func headLinesAreConsumedAsTheyComplete() {
        // Incrementality: complete lines leave the caller's buffer, so a slow client does not
        // make the server rescan (or keep) the whole head.
        var parser = HTTPRequestParser()
        let (c1, r1) = bytes("GET / HTTP/1.1\r\nHo").withUnsafeBytes { parser.parse($0) }
        #expect(c1 == 16 && r1 == .needMore)
        let (c2, r2) = bytes("Host: a\r\n").withUnsafeBytes { parser.parse($0) }
        #expect(c2 == 9 && r2 == .needMore)
        let (c3, r3) = bytes("\r\n").withUnsafeBytes { parser.parse($0) }
        #expect(c3 == 2)
        #expect(r3.request?.head.headers["HOST"] == "a")
    }

    @Test func byteByByteLargeHeadIsLinear() {
        // 16 KiB of headers fed one byte at a time; quadratic rescanning would take seconds.
        let limits = HTTPParserLimits()
        var raw = "GET / HTTP/1.1\r\n"
        for i in 0..<90 { raw += "X-Header-\(i): " + String(repeating: "v", count: 160) + "\r\n" }
        raw += "\r\n"
        let clock = ContinuousClock()
        let start = clock.now
        let outcome = drive(bytes(raw).map { [$0] }, limits: limits)
        #expect(outcome.requests.count == 1)
        #expect(outcome.requests.first?.head.headers.count == 90)
        #expect(clock.now - start < .seconds(2))
    }

    @Test func absoluteFormTargets() {
        #expect(single("GET http://h.example/a/b?c HTTP/1.1\r\n\r\n")?.head.path == "/a/b")
        #expect(single("GET HTTPS://h.example HTTP/1.1\r\n\r\n")?.head.path == "/")
        let q = single("GET http://h.example?x=1 HTTP/1.1\r\n\r\n")?.head
        #expect(q?.path == "/" && q?.query == "x=1")
        #expect(single("GET /p? HTTP/1.1\r\n\r\n")?.head.query == "")
    }

    @Test func methodMapping() {
        for name in ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PURGE"] {
            #expect(HTTPMethod(name).name == name)
        }
        #expect(HTTPMethod("get") == .other("get"))
        #expect(HTTPMethod("OPTIONS") == .options)
    }

    @Test func contractViolationDoesNotCrash() {
        // A caller that hands back fewer bytes than before must not make the parser read out of
        // bounds.
        var parser = HTTPRequestParser()
        _ = bytes("GET /abcdefgh").withUnsafeBytes { parser.parse($0) }
        let (consumed, result) = bytes("GE").withUnsafeBytes { parser.parse($0) }
        #expect(consumed == 0 && result == .needMore)
    }
}

@Suite("HTTPHeaders")
struct HTTPHeadersTests {
    @Test func caseInsensitiveOrderedAccess() {
        var headers: HTTPHeaders = ["Content-Type": "text/plain", "Set-Cookie": "a=1"]
        headers.add(name: "set-cookie", value: "b=2")
        #expect(headers["content-type"] == "text/plain")
        #expect(headers.values("SET-COOKIE") == ["a=1", "b=2"])
        #expect(headers.contains("Set-cookie"))
        #expect(!headers.contains("Content-Length"))
        headers.replaceOrAdd(name: "SET-COOKIE", value: "c=3")
        #expect(headers.values("set-cookie") == ["c=3"])
        headers.replaceOrAdd("X-New", "1")
        #expect(headers.map(\.name) == ["Content-Type", "Set-Cookie", "X-New"])
        headers["x-new"] = nil
        #expect(headers.count == 2)
        headers["Content-Type"] = "application/json"
        #expect(headers["CONTENT-TYPE"] == "application/json")
    }
}
