import Testing
import Glibc
@testable import Reactor

/// A delegate that records what the connection reports.
final class RecordingDelegate: TCPConnectionDelegate {
    var received: [UInt8] = []
    var writability: [Bool] = []
    var closed: CloseReason?
    var readEnded = false
    var consume = true
    func connectionDidRead(_ c: TCPConnection) {
        if consume {
            received.append(contentsOf: c.readBuffer.unreadBytes)
            c.readBuffer.consume(c.readBuffer.count)
        }
    }
    func connectionReadDidEnd(_ c: TCPConnection) { readEnded = true }
    func connectionWritabilityChanged(_ c: TCPConnection, isWritable: Bool) { writability.append(isWritable) }
    func connectionDidClose(_ c: TCPConnection, reason: CloseReason) { closed = reason }
}

/// One listener and a connected client/server pair on the same loop.
final class Pair {
    let loop: EventLoop
    var server: TCPConnection?
    let client: TCPConnection
    let serverDelegate = RecordingDelegate()
    let clientDelegate = RecordingDelegate()
    let listener: TCPListener

    init(limits: TCPConnectionLimits = TCPConnectionLimits()) throws {
        loop = try EventLoop()
        let lfd = try Sockets.listen(host: "127.0.0.1", port: 0, reusePort: false)
        var accepted: Int32 = -1
        listener = try TCPListener(loop: loop, fd: lfd) { accepted = $0 }
        var connected = false
        client = try TCPConnection.connect(loop: loop, host: "127.0.0.1", port: listener.port, limits: limits) { err in
            connected = err == nil
        }
        client.delegate = clientDelegate
        _ = runLoop(loop) { connected && accepted >= 0 }
        let s = try TCPConnection(loop: loop, fd: accepted, limits: limits)
        s.delegate = serverDelegate
        server = s
    }
}

@Suite struct TCPConnectionTests {
    @Test func bytesRoundTrip() throws {
        let p = try Pair()
        p.client.write("hello")
        #expect(runLoop(p.loop) { p.serverDelegate.received.count == 5 })
        #expect(String(decoding: p.serverDelegate.received, as: UTF8.self) == "hello")
    }

    @Test func slowReaderFillsOutboundThenDrainsWithWritabilityEvents() throws {
        let limits = TCPConnectionLimits(highWater: 64 * 1024, lowWater: 16 * 1024, hardLimit: 64 * 1024 * 1024)
        let p = try Pair(limits: limits)
        p.clientDelegate.consume = false  // the client stops reading: kernel buffers fill
        p.client.pauseReading()
        let chunk = [UInt8](repeating: 0x61, count: 16 * 1024)
        var sent = 0
        // Produce like a relay would: only while writable.
        while p.server!.isWritable && sent < 32 * 1024 * 1024 {
            p.server!.write(contentsOf: chunk)
            sent += chunk.count
            p.loop.tick(block: false)
        }
        #expect(p.serverDelegate.writability == [false], "high watermark reported once")
        #expect(p.server!.pendingOutbound >= 64 * 1024 - chunk.count)
        // The reader comes back: drain everything.
        p.clientDelegate.consume = true
        p.client.resumeReading()
        #expect(runLoop(p.loop, seconds: 10) { p.clientDelegate.received.count == sent })
        #expect(p.serverDelegate.writability == [false, true])
        #expect(p.server!.pendingOutbound == 0)
    }

    @Test func peerCloseIsNoticedAtOnce() throws {
        let p = try Pair()
        p.client.close()
        #expect(runLoop(p.loop) { p.serverDelegate.readEnded })
    }

    @Test func slowConsumerOverHardLimitIsClosed() throws {
        let limits = TCPConnectionLimits(highWater: 8 * 1024, lowWater: 4 * 1024, hardLimit: 256 * 1024)
        let p = try Pair(limits: limits)
        p.client.pauseReading()
        let chunk = [UInt8](repeating: 0x62, count: 64 * 1024)
        for _ in 0..<200 where p.serverDelegate.closed == nil {
            p.server!.write(contentsOf: chunk)
            p.loop.tick(block: false)
        }
        #expect(p.serverDelegate.closed == .slowConsumer)
    }

    @Test func connectToClosedPortFails() throws {
        let loop = try EventLoop()
        // Find a port nobody listens on: bind, read the port, close.
        let fd = try Sockets.listen(host: "127.0.0.1", port: 0, reusePort: false)
        let port = Sockets.localPort(fd)
        close(fd)
        var result: SystemError??
        let c = try TCPConnection.connect(loop: loop, host: "127.0.0.1", port: port) { result = .some($0) }
        #expect(runLoop(loop) { result != nil })
        #expect(result??.code == ECONNREFUSED)
        #expect(c.isClosed)
    }
}

/// Two handlers made ready together, so one `epoll_wait` returns both: the first to run writes to
/// a connection, the second looks (without consuming) at what the peer has received by then.
private final class SameBatchProbe: IOHandler {
    /// A pipe: its read end is registered, a byte in its write end makes it ready.
    var ends: [Int32] = [-1, -1]
    var fd: Int32 { ends[0] }
    let onReady: () -> Void
    init(onReady: @escaping () -> Void) {
        _ = pipe(&ends)
        self.onReady = onReady
    }
    func handleIO(_ events: IOEvents) {
        var byte: UInt8 = 0
        _ = read(ends[0], &byte, 1)
        onReady()
    }
    func fire() {
        var byte: UInt8 = 1
        _ = write(ends[1], &byte, 1)
    }
    func closeEnds() { close(ends[0]); close(ends[1]) }
}

@Suite struct WritePerEventTests {
    /// A token written while handling one event reaches its client before the loop handles the
    /// rest of that batch: at 500 streams a batch holds dozens of events, and sending only at the
    /// batch's end added all of their work to every token's delay.
    @Test func anEventsWriteIsSentBeforeTheNextEventOfTheBatch() throws {
        let p = try Pair()
        let server = try #require(p.server)
        var handled = 0
        var peerHadBytes: Int?
        let onReady = {
            handled += 1
            if handled == 1 {
                server.write("token")
            } else {
                var peek = [UInt8](repeating: 0, count: 16)
                peerHadBytes = recv(p.client.fd, &peek, peek.count, Int32(MSG_PEEK | MSG_DONTWAIT))
            }
        }
        let a = SameBatchProbe(onReady: onReady), b = SameBatchProbe(onReady: onReady)
        defer { a.closeEnds(); b.closeEnds() }
        let ta = try p.loop.register(fd: a.fd, interest: .readable, handler: a)
        let tb = try p.loop.register(fd: b.fd, interest: .readable, handler: b)
        defer { p.loop.deregister(ta); p.loop.deregister(tb) }
        a.fire()
        b.fire()
        p.loop.tick(block: false)
        #expect(handled == 2, "both events should come back from one epoll_wait")
        #expect(peerHadBytes == 5, "the first event's write should be on the wire before the second event runs")
        #expect(runLoop(p.loop) { p.clientDelegate.received.count == 5 })
    }
}
