import Testing
import Glibc
@testable import HTTP
@testable import Reactor

/// HTTP/1.1 connection semantics over real sockets: keep-alive, close, HEAD, 100-continue,
/// pipelining, and the parser's limits as a client sees them.
@Suite(.serialized) struct ServerKeepAliveTests {
    @Test func severalRequestsOnOneKeepAliveConnection() throws {
        let server = try TestServer()
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 10)
        defer { dog.finish() }
        let c = try Client(port: server.port)
        dog.watch(c)
        for i in 0..<5 {
            try c.send("GET /echo?n=\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.status == 200)
            #expect(r.text == "GET /echo?n=\(i)")
            #expect(r.header("Connection") == "keep-alive")
        }
        #expect(server.freshState().stats.accepted == 1, "all five requests must reuse one connection")
        #expect(!dog.hasFired)
    }

    @Test func http10WithoutKeepAliveIsClosed() throws {
        let server = try TestServer()
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 10)
        defer { dog.finish() }
        let c = try Client(port: server.port)
        dog.watch(c)
        try c.send("GET /echo HTTP/1.0\r\n\r\n")
        let r = try c.readResponse()
        #expect(r.status == 200)
        #expect(r.version == "HTTP/1.0")
        #expect(r.text == "GET /echo")
        #expect(r.header("Connection")?.lowercased() == "close")
        #expect(c.isClosedByPeer())
        #expect(!dog.hasFired)
    }

    @Test func connectionCloseIsHonoured() throws {
        let server = try TestServer()
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 10)
        defer { dog.finish() }
        do {
            let c = try Client(port: server.port)
            dog.watch(c)
            try c.send("GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.status == 200)
            #expect(r.header("Connection")?.lowercased() == "close")
            #expect(c.isClosedByPeer())
        }  // the client closes its end, as clients do after EOF
        // The server lingers (up to 2 s) only until the client has closed too.
        #expect(server.waitFor(1) { $0.connections == 0 })
        #expect(!dog.hasFired)
    }

    @Test func headHasHeadersButNoBody() throws {
        let server = try TestServer()
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 10)
        defer { dog.finish() }
        let c = try Client(port: server.port)
        dog.watch(c)
        // HEAD then GET on the same connection: if HEAD leaked a body, the GET's status line would be garbage.
        try c.send("HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\nGET /echo/after HTTP/1.1\r\nHost: t\r\n\r\n")
        let h = try c.readResponse(method: "HEAD")
        #expect(h.status == 200)
        #expect(h.header("Content-Length") == String("GET /echo".utf8.count))
        #expect(h.body.isEmpty)
        let g = try c.readResponse()
        #expect(g.status == 200)
        #expect(g.text == "GET after")
        #expect(!dog.hasFired)
    }

    @Test func expectContinueGets100BeforeTheBodyIsSent() throws {
        let server = try TestServer()
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 10)
        defer { dog.finish() }
        let c = try Client(port: server.port)
        dog.watch(c)
        let body = "hello, continued"
        try c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n\r\n")
        let interim = try c.readHead()  // must arrive without the body having been sent
        #expect(interim.status == 100)
        try c.send(body)
        let r = try c.readResponse()
        #expect(r.status == 200)
        #expect(r.text == body)
        #expect(!dog.hasFired)
    }

    @Test func tenPipelinedRequestsAnswerInOrderWithASlowOneFirst() throws {
        let server = try TestServer()
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 10)
        defer { dog.finish() }
        let c = try Client(port: server.port)
        dog.watch(c)
        var batch = "GET /slow?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n"
        for i in 1..<10 {
            if i % 3 == 0 {
                let b = "body-\(i)"
                batch += "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(b.utf8.count)\r\n\r\n\(b)"
            } else {
                batch += "GET /echo/p\(i) HTTP/1.1\r\nHost: t\r\n\r\n"
            }
        }
        try c.send(batch)  // one write
        let first = try c.readResponse()
        #expect(first.status == 200)
        #expect(first.text == "slow 300")
        for i in 1..<10 {
            let r = try c.readResponse()
            #expect(r.status == 200)
            #expect(r.text == (i % 3 == 0 ? "body-\(i)" : "GET p\(i)"), "response \(i) out of order")
        }
        #expect(!dog.hasFired)
    }

    // MARK: Limits over the socket

    private func expectRefusal(_ request: [UInt8], status: Int, type: String, config: HTTPServerConfig = HTTPServerConfig(),
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let server = try TestServer(config: config)
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 10)
        defer { dog.finish() }
        let c = try Client(port: server.port)
        dog.watch(c)
        try? c.send(request)  // the server may close before reading all of it
        let r = try c.readResponse()
        #expect(r.status == status, sourceLocation: sourceLocation)
        #expect(r.header("Content-Type") == "application/json", sourceLocation: sourceLocation)
        #expect(r.text.hasPrefix(#"{"error":{"type":"\#(type)","message":""#), "body: \(r.text)", sourceLocation: sourceLocation)
        #expect(r.header("Connection")?.lowercased() == "close", sourceLocation: sourceLocation)
        #expect(c.isClosedByPeer(), "connection must be closed after a \(status)", sourceLocation: sourceLocation)
        #expect(!dog.hasFired, sourceLocation: sourceLocation)
    }

    @Test func uriTooLongIs414() throws {
        let path = "/" + String(repeating: "a", count: 9000)
        try expectRefusal(Array("GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n".utf8), status: 414, type: "invalid_request")
    }

    @Test func headerBlockTooLargeIs431() throws {
        let big = String(repeating: "b", count: 20_000)
        try expectRefusal(Array("GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: \(big)\r\n\r\n".utf8), status: 431, type: "invalid_request")
    }

    @Test func contentLengthOverMaxIs413() throws {
        var limits = HTTPParserLimits()
        limits.maxBodyBytes = 1000
        try expectRefusal(Array("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n".utf8) + [UInt8](repeating: 0x61, count: 5000),
                          status: 413, type: "payload_too_large", config: HTTPServerConfig(parserLimits: limits))
    }

    @Test func garbageIs400() throws {
        try expectRefusal(Array("\u{01}\u{02}garbage garbage\r\n\r\n".utf8), status: 400, type: "invalid_request")
    }

    @Test func unknownTransferCodingIs501() throws {
        try expectRefusal(Array("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".utf8),
                          status: 501, type: "not_implemented")
    }

    /// A body bigger than the connection's read buffer but within maxBodyBytes must be accepted:
    /// the server must not answer 413 for a body it promised to take.
    @Test func bodyLargerThanReadBufferWithinLimitIsAccepted() throws {
        let server = try TestServer()
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 10)
        defer { dog.finish() }
        let c = try Client(port: server.port)
        dog.watch(c)
        let body = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 % 251) }
        try c.send(Array("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        let r = try c.readResponse()
        #expect(r.status == 200)
        #expect(r.body == body)
        #expect(!dog.hasFired)
    }
}
