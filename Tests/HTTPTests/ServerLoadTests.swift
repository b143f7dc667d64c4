import Testing
import Glibc
@testable import HTTP
@testable import Reactor

/// Backpressure, timeouts, connection limits, many connections and graceful drain, over real sockets.
@Suite(.serialized) struct ServerLoadTests {
    @Test func slowReaderKeepsBacklogBoundedAndGetsEverythingIntact() throws {
        let server = try TestServer()
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 30)
        defer { dog.finish() }
        let kib = 8 * 1024  // 8 MiB: far more than socket buffers and the 8 MiB-hard-limit-adjacent backlog
        let c = try Client(port: server.port, timeoutSeconds: 5, receiveBuffer: 16 * 1024)
        dog.watch(c)
        try c.send("GET /stream?kib=\(kib) HTTP/1.1\r\nHost: t\r\n\r\n")
        // The client reads nothing for a while: the server must pause the producer, not buffer 8 MiB.
        #expect(server.waitFor(3) { $0.streamPauses >= 1 }, "the handler never saw writability false")
        usleep(500_000)
        let stalled = server.freshState()
        let high = TCPConnectionLimits().highWater
        #expect(stalled.maxStreamBacklog <= high + TestServer.streamChunk,
                "backlog \(stalled.maxStreamBacklog) grew past the high watermark \(high) + one chunk")
        #expect(stalled.streamsFinished == 0)
        #expect(stalled.connections == 1, "the slow reader must not be dropped: \(stalled.description)")
        // Now read everything and check every byte.
        let r = try c.readResponse()
        #expect(r.status == 200)
        #expect(r.body.count == kib * 1024)
        var firstBad = -1
        for i in 0..<r.body.count where r.body[i] != streamByte(i) { firstBad = i; break }
        #expect(firstBad == -1, "body corrupted at offset \(firstBad)")
        let end = server.freshState()
        #expect(end.streamResumes >= 1)
        #expect(end.streamsFinished == 1)
        #expect(end.maxStreamBacklog <= high + TestServer.streamChunk)
        #expect(!dog.hasFired)
    }

    @Test func slowlorisIsDroppedOnTimeWhileOthersAreServed() throws {
        let server = try TestServer(config: HTTPServerConfig(headerTimeoutSeconds: 1))
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 30)
        defer { dog.finish() }
        let loris = try Client(port: server.port, timeoutSeconds: 5)
        dog.watch(loris)
        let t0 = monotonicNanos()
        try loris.send("GET /echo HTTP/1.1\r\nHost: t\r\nX-Partial: ")
        // Time the drop on another thread while this one keeps 500 other clients busy.
        let dropAfter = Locked<Double>(-1)
        let lfd = loris.fd
        let waiter = ReactorThread.spawn(name: "loris") {
            var b = [UInt8](repeating: 0, count: 1024)
            while true {
                let n = b.withUnsafeMutableBytes { recv(lfd, $0.baseAddress, $0.count, 0) }
                if n > 0 { continue }
                if n < 0 && errno == EINTR { continue }
                let e = n < 0 ? errno : 0
                dropAfter.withLock { $0 = (e == 0 || e == ECONNRESET) ? Double(monotonicNanos() - t0) / 1e9 : -Double(e) }
                return
            }
        }
        var clients: [Client] = []
        // Each client sends its head right after connecting: the header deadline runs from accept,
        // and on a busy machine opening all 500 first could take longer than the 1 s under test.
        for i in 0..<500 {
            let c = try Client(port: server.port)
            try c.send("GET /echo/c\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            clients.append(c)
        }
        dog.watch(clients)
        var served = 0
        for (i, c) in clients.enumerated() {
            let r = try c.readResponse()
            if r.status == 200 && r.text == "GET c\(i)" { served += 1 }
        }
        #expect(served == 500)
        if let waiter { ReactorThread.join(waiter) }
        let after = dropAfter.value
        #expect(after >= 0.9 && after <= 1.5, "slowloris dropped after \(after) s (want ~1 s)")
        #expect(server.freshState().stats.slowClientsDropped == 1)
        #expect(!dog.hasFired)
    }

    /// A connection that never sends a byte is a slowloris too: it gets the header timeout, not
    /// the (much longer) keep-alive idle timeout.
    @Test func silentNewConnectionIsDroppedAfterHeaderTimeout() throws {
        let server = try TestServer(config: HTTPServerConfig(headerTimeoutSeconds: 0.5, idleTimeoutSeconds: 30))
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 10)
        defer { dog.finish() }
        let c = try Client(port: server.port)
        dog.watch(c)
        let t0 = monotonicNanos()
        #expect(c.isClosedByPeer(), "a silent connection was kept open")
        let s = Double(monotonicNanos() - t0) / 1e9
        #expect(s >= 0.4 && s <= 1.5, "silent connection dropped after \(s) s (want ~0.5 s)")
        #expect(server.freshState().stats.slowClientsDropped == 1)
        #expect(!dog.hasFired)
    }

    @Test func idleKeepAliveConnectionIsClosedAfterIdleTimeout() throws {
        let server = try TestServer(config: HTTPServerConfig(idleTimeoutSeconds: 0.5))
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 10)
        defer { dog.finish() }
        let c = try Client(port: server.port)
        dog.watch(c)
        try c.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try c.readResponse().status == 200)
        let t0 = monotonicNanos()
        #expect(c.isClosedByPeer())
        let s = Double(monotonicNanos() - t0) / 1e9
        #expect(s >= 0.4 && s <= 1.5, "idle connection closed after \(s) s (want ~0.5 s)")
        #expect(server.waitFor(2) { $0.connections == 0 })
        #expect(!dog.hasFired)
    }

    /// Each request moves the idle deadline: a connection used every 0.3 s with a 0.5 s idle
    /// timeout stays open across several timer expiries, then closes ~0.5 s after the last use.
    @Test func idleDeadlineMovesWithEveryRequest() throws {
        let server = try TestServer(config: HTTPServerConfig(idleTimeoutSeconds: 0.5))
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 10)
        defer { dog.finish() }
        let c = try Client(port: server.port)
        dog.watch(c)
        for i in 0..<7 {
            try c.send("GET /echo/i\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.text == "GET i\(i)", "request \(i) on a connection in use must be answered")
            usleep(300_000)
        }
        #expect(server.freshState().stats.accepted == 1)
        let t0 = monotonicNanos()
        #expect(c.isClosedByPeer())
        let s = Double(monotonicNanos() - t0) / 1e9
        #expect(s <= 0.5, "closed \(s) s after the last 0.3 s pause (want ~0.2 s)")
        #expect(!dog.hasFired)
    }

    @Test func connectionOverTheLimitGets503AndOthersAreUnaffected() throws {
        let server = try TestServer(config: HTTPServerConfig(maxConnections: 50))
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 20)
        defer { dog.finish() }
        var clients: [Client] = []
        for i in 0..<50 {
            let c = try Client(port: server.port)
            try c.send("GET /echo/a\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try c.readResponse().text == "GET a\(i)")
            clients.append(c)
        }
        dog.watch(clients)
        #expect(server.waitFor(2) { $0.connections == 50 })
        // A client that sends its request at once, as real ones do, must still read the 503.
        for _ in 0..<3 {
            let extra = try Client(port: server.port)
            dog.watch(extra)
            try? extra.send("GET /echo/extra HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try extra.readResponse()
            #expect(r.status == 503)
            #expect(r.header("Retry-After") != nil)
            #expect(r.text.contains(#""type":"overloaded""#))
            #expect(extra.isClosedByPeer())
        }
        for (i, c) in clients.enumerated() {
            try c.send("GET /echo/b\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try c.readResponse().text == "GET b\(i)")
        }
        #expect(server.freshState().stats.refusedOverLimit == 3)
        #expect(!dog.hasFired)
    }

    @Test func thousandConcurrentConnectionsEachServed() throws {
        let limit = raiseFileLimit()
        try #require(limit >= 2_200, "need 2,200 fds for 1,000 client + 1,000 server sockets, have \(limit)")
        let server = try TestServer()
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 60)
        defer { dog.finish() }
        var clients: [Client] = []
        clients.reserveCapacity(1000)
        for _ in 0..<1000 { clients.append(try Client(port: server.port, timeoutSeconds: 10)) }
        dog.watch(clients)
        #expect(server.waitFor(10) { $0.connections == 1000 }, "all 1,000 must be open at once")
        for (i, c) in clients.enumerated() { try c.send("GET /echo/k\(i) HTTP/1.1\r\nHost: t\r\n\r\n") }
        var ok = 0
        for (i, c) in clients.enumerated() where (try? c.readResponse())?.text == "GET k\(i)" { ok += 1 }
        #expect(ok == 1000)
        clients.removeAll()
        #expect(server.waitFor(10) { $0.connections == 0 }, "server must notice 1,000 closes")
        #expect(!dog.hasFired)
    }

    @Test func drainFinishesInFlightResponseAnswersNew503AndCompletes() throws {
        let server = try TestServer()
        defer { server.stop() }
        let dog = Watchdog(server, seconds: 15)
        defer { dog.finish() }
        let busy = try Client(port: server.port)
        let idle = try Client(port: server.port)
        dog.watch([busy, idle])
        try idle.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try idle.readResponse().status == 200)
        try busy.send("GET /slow?ms=800 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(server.waitFor(2) { $0.stats.requests == 2 })
        server.drain()
        #expect(idle.isClosedByPeer(), "idle keep-alive connection must be closed at drain start")
        // The listener stays open: a new request is answered 503 and its connection closed, so a
        // load balancer sees the instance go unready instead of refused connections.
        let late = try Client(port: server.port)
        dog.watch(late)
        try late.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        let refused = try late.readResponse()
        #expect(refused.status == 503)
        #expect(refused.header("Connection")?.lowercased() == "close")
        #expect(refused.header("Retry-After") == "1")
        #expect(refused.text.contains(#""type":"overloaded""#))
        #expect(late.isClosedByPeer())
        // A client that connects during the drain and says nothing must not hold the drain open.
        let lurker = try Client(port: server.port)
        dog.watch(lurker)
        #expect(!server.state.drainCompleted, "drain completed before the in-flight response")
        let r = try busy.readResponse()
        #expect(r.status == 200)
        #expect(r.text == "slow 800")
        #expect(r.header("Connection")?.lowercased() == "close")
        #expect(busy.isClosedByPeer())
        // Our side closes too, ending the server's lingering close at once. The lurker's header
        // timeout (10 s) is far off: only a drain that ignores it completes within the wait.
        shutdown(busy.fd, Int32(SHUT_RDWR))
        #expect(server.waitFor(1.5) { $0.drainCompleted }, "drain completion never fired (a connection opened during the drain held it)")
        #expect(!dog.hasFired)
    }
}
