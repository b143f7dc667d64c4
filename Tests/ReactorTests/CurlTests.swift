#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Testing

/// Records everything a transfer tells its delegate; optional hooks decide body disposition.
final class Recorder: CurlTransferDelegate {
    var status: Int?
    var headers: [(String, String)] = []
    var headCount = 0
    var body: [UInt8] = []
    var chunks = 0
    var results: [Result<Void, TransferError>] = []
    var callbacksAfterComplete = 0
    var bodyAfterCancel = 0
    var cancelled = false
    var onBody: ((Recorder, CurlTransfer, UnsafeRawBufferPointer) -> BodyDisposition)?
    var onHead: ((Recorder, CurlTransfer) -> Void)?
    var onDone: ((Recorder) -> Void)?

    func transferDidReceiveHead(_ transfer: CurlTransfer, status: Int, headers: [(String, String)]) {
        if !results.isEmpty { callbacksAfterComplete += 1 }
        headCount += 1
        self.status = status
        self.headers = headers
        onHead?(self, transfer)
    }

    func transferDidReceiveBody(_ transfer: CurlTransfer, _ bytes: UnsafeRawBufferPointer) -> BodyDisposition {
        if !results.isEmpty { callbacksAfterComplete += 1 }
        if cancelled { bodyAfterCancel += 1 }
        let d = onBody?(self, transfer, bytes) ?? .accept
        if d == .accept {
            body.append(contentsOf: bytes)
            chunks += 1
        }
        return d
    }

    func transferDidComplete(_ transfer: CurlTransfer, _ result: Result<Void, TransferError>) {
        if !results.isEmpty { callbacksAfterComplete += 1 }
        results.append(result)
        onDone?(self)
    }

    func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }

    var error: TransferError? {
        guard case .failure(let e)? = results.first else { return nil }
        return e
    }
}

/// A client loop plus multi, with the server on its own thread.
final class CurlHarness {
    let loop: EventLoop
    let multi: CurlMulti
    let server: TestHTTPServer.Handle
    let baseRegistrations: Int
    let baseTimers: Int

    init?(configuration: CurlMulti.Configuration = .init()) {
        #expect(CurlGlobal.initialize())
        signal(SIGPIPE, SIG_IGN)  // NOSIGNAL=1 leaves SIGPIPE to us (docs/reactor-notes.md C9)
        guard let loop = try? EventLoop(), let multi = CurlMulti(loop: loop, configuration: configuration),
              let server = TestHTTPServer.start() else { return nil }
        self.loop = loop
        self.multi = multi
        self.server = server
        baseRegistrations = loop.registrationCount
        baseTimers = loop.liveTimerCount
    }

    deinit { server.stop() }

    func url(_ path: String) -> String { "http://127.0.0.1:\(server.port)\(path)" }

    func call(_ path: String, _ configure: (inout UpstreamCall) -> Void = { _ in }) -> UpstreamCall {
        var c = UpstreamCall(url: url(path), method: .post, headers: [("content-type", "application/json")],
                             body: Array(#"{"model":"test"}"#.utf8), httpVersion: .http1_1,
                             connectTimeoutMs: 2_000, firstByteTimeoutMs: 3_000, idleTimeoutMs: 3_000)
        configure(&c)
        return c
    }

    /// Runs the loop until `stop()` or the watchdog; the watchdog fails the test and dumps state.
    @discardableResult
    func run(watchdogMs: Int64 = 8_000) -> Bool {
        var fired = false
        let wd = loop.schedule(afterMillis: watchdogMs) { [loop, multi] in
            fired = true
            print("WATCHDOG after \(watchdogMs) ms; registrations=\(loop.registrationCount) timers=\(loop.liveTimerCount)\n\(multi.stateDescription)")
            loop.stop()
        }
        loop.run()
        loop.cancel(wd)
        #expect(!fired, "watchdog fired")
        return !fired
    }

    /// Starts one transfer whose completion stops the loop, and runs it.
    func runOne(_ call: UpstreamCall, _ rec: Recorder) -> CurlTransfer {
        let prev = rec.onDone
        rec.onDone = { [loop] r in prev?(r); loop.stop() }
        let t = multi.start(call, delegate: rec)
        run()
        return t
    }

    /// Lets curl finish closing sockets it still watches (a few loop ticks, no blocking).
    func settle() {
        for _ in 0..<20 { loop.tick(block: false) }
    }

    func expectNoLeaks(sourceLocation: SourceLocation = #_sourceLocation) {
        settle()
        #expect(multi.transferCount == 0, sourceLocation: sourceLocation)
        #expect(loop.registrationCount == baseRegistrations + multi.watchedSocketCount, sourceLocation: sourceLocation)
        #expect(multi.watchedSocketCount == 0, "curl still watches sockets:\n\(multi.stateDescription)", sourceLocation: sourceLocation)
        let curlTimer = multi.timerArmed ? 1 : 0
        #expect(loop.liveTimerCount == baseTimers + curlTimer, sourceLocation: sourceLocation)
    }
}

@Suite(.serialized)
struct CurlTests {
    @Test func streamedBodyArrivesInOrderAndCompletes() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        let t = h.runOne(h.call("/stream?n=6&delay=15&size=40&id=s"), rec)
        #expect(rec.results.count == 1)
        if case .failure(let e)? = rec.results.first { Issue.record("failed: \(e)") }
        #expect(rec.status == 200)
        #expect(rec.headCount == 1)
        #expect(rec.header("x-upstream") == "test")
        #expect(rec.header("content-type") == "text/event-stream")
        #expect(rec.body == testBody(pieces: 6, size: 40, id: "s"))
        #expect(rec.chunks >= 6)
        #expect(t.isCompleted)
        print("stream: chunks=\(rec.chunks) stats=\(h.multi.stats)")
    }

    @Test func closeDelimitedBody() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        _ = h.runOne(h.call("/stream?n=4&delay=5&size=100&id=c&mode=close"), rec)
        #expect(rec.error == nil)
        #expect(rec.body == testBody(pieces: 4, size: 100, id: "c"))
        h.expectNoLeaks()
    }

    @Test func requestBodyAndHeadersReachServer() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        let big = [UInt8](repeating: UInt8(ascii: "b"), count: 5000)  // > 1 KiB: no Expect: 100-continue stall
        _ = h.runOne(h.call("/echo") { $0.headers.append(("x-test", "hello")); $0.body = big }, rec)
        #expect(rec.error == nil)
        #expect(String(decoding: rec.body, as: UTF8.self) == "x-test=hello;expect=-;len=5000;" + String(repeating: "b", count: 5000))
    }

    @Test func rateLimitedResponseCarriesStatusHeadersAndJSON() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        _ = h.runOne(h.call("/ratelimit"), rec)
        #expect(rec.error == nil)  // HTTP errors are the provider layer's to interpret
        #expect(rec.status == 429)
        #expect(rec.header("retry-after") == "7")
        #expect(String(decoding: rec.body, as: UTF8.self).contains("rate_limit_error"))
    }

    @Test func connectionRefused() throws {
        let h = try #require(CurlHarness())
        // A bound but not listening port refuses connections, with no race against other tests.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let port = Sockets.localPort(fd)
        let rec = Recorder()
        var c = h.call("/")
        c.url = "http://127.0.0.1:\(port)/v1/chat"
        _ = h.runOne(c, rec)
        #expect(rec.error?.kind == .connectFailed, "\(String(describing: rec.error))")
        #expect(rec.headCount == 0)
        print("refused: \(rec.error?.description ?? "-")")
        h.expectNoLeaks()
    }

    @Test func dnsFailureDoesNotBlockTheLoop() throws {
        let h = try #require(CurlHarness())
        #expect(CurlGlobal.hasAsyncDNS)
        var beats = 0
        var beat: TimerID?
        func heartbeat() { beat = h.loop.schedule(afterMillis: 1) { beats += 1; heartbeat() } }
        heartbeat()
        let rec = Recorder()
        var c = h.call("/")
        c.url = "http://nonexistent.invalid/v1/chat"
        let t0 = monotonicNanos()
        _ = h.runOne(c, rec)
        let ms = Double(monotonicNanos() - t0) / 1e6
        if let b = beat { h.loop.cancel(b) }
        #expect(rec.error?.kind == .dnsFailed, "\(String(describing: rec.error))")
        print("dns: \(ms) ms, heartbeats=\(beats), \(rec.error?.description ?? "-")")
        // Threaded resolver: the loop kept ticking while the lookup ran.
        if ms > 10 { #expect(beats > 0) }
        h.expectNoLeaks()
    }

    @Test func firstByteTimeoutOnHangingServer() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        let t0 = monotonicNanos()
        _ = h.runOne(h.call("/hang") { $0.firstByteTimeoutMs = 200 }, rec)
        let ms = Double(monotonicNanos() - t0) / 1e6
        #expect(rec.error?.kind == .timeout(.firstByte), "\(String(describing: rec.error))")
        #expect(rec.status == 200)  // head arrived, body never did
        #expect(rec.body.isEmpty)
        #expect(ms >= 190 && ms < 1500, "took \(ms) ms")
        h.expectNoLeaks()
    }

    @Test func idleTimeoutBetweenChunks() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        _ = h.runOne(h.call("/stall?n=3&delay=10&size=20&id=i") { $0.idleTimeoutMs = 200; $0.firstByteTimeoutMs = 1000 }, rec)
        #expect(rec.error?.kind == .timeout(.idle), "\(String(describing: rec.error))")
        #expect(rec.body == testBody(pieces: 3, size: 20, id: "i"))
        h.expectNoLeaks()
    }

    /// The idle limit is per gap, not per transfer: chunks every 60 ms for ~0.6 s pass a 200 ms
    /// limit, and the silence after the last one is cut about 200 ms after it, not 200 ms after the
    /// timer was first armed.
    @Test func idleTimeoutCountsFromTheLatestChunk() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        let t0 = monotonicNanos()
        _ = h.runOne(h.call("/stall?n=10&delay=60&size=20&id=g") { $0.idleTimeoutMs = 200; $0.firstByteTimeoutMs = 1000 }, rec)
        let ms = Double(monotonicNanos() - t0) / 1e6
        #expect(rec.error?.kind == .timeout(.idle), "\(String(describing: rec.error))")
        #expect(rec.body == testBody(pieces: 10, size: 20, id: "g"))
        // 9 gaps of 60 ms, then the 200 ms limit: ~740 ms; never before the last chunk plus 200 ms.
        #expect(ms >= 730 && ms < 3000, "took \(ms) ms")
        h.expectNoLeaks()
    }

    @Test func resetMidBodyIsPartial() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        _ = h.runOne(h.call("/reset?n=2&delay=10&size=30&id=r"), rec)
        let kind = rec.error?.kind
        #expect(kind == .partial || kind == .transport, "\(String(describing: rec.error))")
        #expect(rec.body == testBody(pieces: 2, size: 30, id: "r"))
        print("reset: \(rec.error?.description ?? "-")")
        h.expectNoLeaks()
    }

    @Test func truncatedContentLengthIsPartial() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        _ = h.runOne(h.call("/truncate"), rec)
        #expect(rec.error?.kind == .partial, "\(String(describing: rec.error))")
        #expect(rec.body == Array("0123456789".utf8))
        print("truncate: \(rec.error?.description ?? "-")")
        h.expectNoLeaks()
    }

    @Test func cancelBeforeFirstByte() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        rec.onHead = { r, t in r.cancelled = true; t.cancel(); t.cancel() }  // twice: still one completion
        let t = h.runOne(h.call("/hang"), rec)
        #expect(rec.results.count == 1)
        #expect(rec.error?.kind == .cancelled)
        #expect(rec.body.isEmpty)
        #expect(rec.bodyAfterCancel == 0)
        t.cancel()  // after completion: no-op
        h.settle()
        #expect(rec.results.count == 1)
        #expect(rec.callbacksAfterComplete == 0)
        h.expectNoLeaks()
    }

    @Test func cancelFromOutsideBeforeAnyResponse() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        rec.onDone = { [loop = h.loop] _ in loop.stop() }
        let t = h.multi.start(h.call("/hang"), delegate: rec)
        h.loop.schedule(afterMillis: 20) { rec.cancelled = true; t.cancel() }
        h.run()
        #expect(rec.results.count == 1)
        #expect(rec.error?.kind == .cancelled)
        h.expectNoLeaks()
    }

    @Test func cancelAfterSomeBytes() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        rec.onBody = { r, t, _ in
            if r.chunks == 2 { r.cancelled = true; t.cancel() }  // from inside the write callback: deferred
            return .accept
        }
        _ = h.runOne(h.call("/stream?n=10&delay=20&size=25&id=x"), rec)
        #expect(rec.results.count == 1)
        #expect(rec.error?.kind == .cancelled)
        #expect(rec.chunks == 3)
        #expect(rec.bodyAfterCancel == 0)  // nothing after the chunk in which we cancelled
        #expect(rec.body == testBody(pieces: 3, size: 25, id: "x"))
        h.loop.schedule(afterMillis: 100) { [loop = h.loop] in loop.stop() }
        h.run()  // the server keeps trying to send: nothing more may reach us
        #expect(rec.callbacksAfterComplete == 0)
        #expect(rec.results.count == 1)
        h.expectNoLeaks()
    }

    @Test func cancelWhilePaused() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        rec.onBody = { r, t, _ in
            if r.chunks == 1 {
                h.loop.schedule(afterMillis: 30) { r.cancelled = true; t.cancel() }
                return .pause
            }
            return .accept
        }
        let t = h.runOne(h.call("/stream?n=5&delay=5&size=25&id=p"), rec)
        #expect(rec.results.count == 1)
        #expect(rec.error?.kind == .cancelled)
        #expect(rec.bodyAfterCancel == 0)
        #expect(t.pauseCount == 1)
        h.expectNoLeaks()
    }

    @Test func pauseThenResumeDeliversEverythingOnce() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        var pausesAsked = 0
        var redeliveries = 0
        var lastPausedFirstByte: UInt8?
        rec.onBody = { r, t, bytes in
            if let b = lastPausedFirstByte {
                // curl re-delivers the SAME bytes after a pause (docs/reactor-notes.md C4)
                if bytes.first == b { redeliveries += 1 }
                lastPausedFirstByte = nil
            }
            if r.chunks % 2 == 1 && pausesAsked < 4 {
                pausesAsked += 1
                lastPausedFirstByte = bytes.first
                h.loop.schedule(afterMillis: 25) { t.resume() }
                return .pause
            }
            return .accept
        }
        let t = h.runOne(h.call("/stream?n=10&delay=5&size=64&id=pr"), rec)
        #expect(rec.error == nil, "\(String(describing: rec.error))")
        #expect(rec.body == testBody(pieces: 10, size: 64, id: "pr"))
        #expect(pausesAsked == 4)
        #expect(redeliveries == 4)
        #expect(t.pauseCount == 4)
        print("pause/resume: pauses=\(t.pauseCount) stats=\(h.multi.stats)")
        h.expectNoLeaks()
    }

    @Test func pauseOnLastChunkStillCompletes() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        var paused = false
        rec.onBody = { r, t, _ in
            if r.body.count == 3 * 40 - 40 && !paused {  // the last piece (each piece arrives on its own)
                paused = true
                h.loop.schedule(afterMillis: 50) { t.resume() }
                return .pause
            }
            return .accept
        }
        let t0 = monotonicNanos()
        _ = h.runOne(h.call("/stream?n=3&delay=10&size=40&id=l"), rec)
        #expect(rec.error == nil)
        #expect(paused)
        #expect(rec.body == testBody(pieces: 3, size: 40, id: "l"))
        print("last-chunk pause: done after \(Double(monotonicNanos() - t0) / 1e6) ms")
    }

    @Test func oversizedDeliveryWhilePausedFailsWithBufferLimit() throws {
        let h = try #require(CurlHarness())
        let rec = Recorder()
        rec.onBody = { _, _, _ in .pause }
        _ = h.runOne(h.call("/big?size=200000") { $0.maxBufferedBytes = 1000 }, rec)
        #expect(rec.error?.kind == .bufferLimit, "\(String(describing: rec.error))")
        print("buffer limit: \(rec.error?.description ?? "-")")
        h.expectNoLeaks()
    }

    @Test func twoHundredConcurrentTransfers() throws {
        let h = try #require(CurlHarness())
        let n = 200
        var done = 0
        var recs: [Recorder] = []
        let t0 = monotonicNanos()
        for i in 0..<n {
            let rec = Recorder()
            rec.onDone = { [loop = h.loop] _ in
                done += 1
                if done == n { loop.stop() }
            }
            recs.append(rec)
            _ = h.multi.start(h.call("/stream?n=4&delay=5&size=48&id=\(i)"), delegate: rec)
        }
        print("200 concurrent: started in \(Double(monotonicNanos() - t0) / 1e6) ms")
        var firstHeadMs = 0.0, lastHeadMs = 0.0, heads = 0
        for r in recs {
            r.onHead = { _, _ in
                heads += 1
                let t = Double(monotonicNanos() - t0) / 1e6
                if heads == 1 { firstHeadMs = t }
                if heads == n { lastHeadMs = t }
            }
        }
        h.run(watchdogMs: 20_000)
        let ms = Double(monotonicNanos() - t0) / 1e6
        print("200 concurrent: first head \(firstHeadMs) ms, last head \(lastHeadMs) ms")
        #expect(done == n)
        var wrong = 0
        for (i, r) in recs.enumerated() where r.error != nil || r.body != testBody(pieces: 4, size: 48, id: "\(i)") || r.results.count != 1 { wrong += 1 }
        #expect(wrong == 0)
        h.expectNoLeaks()
        print("200 concurrent: \(ms) ms, stats=\(h.multi.stats), sockets still watched=\(h.multi.watchedSocketCount), curl timer armed=\(h.multi.timerArmed)")
    }

    @Test func closeCancelsEverythingAndFreesIt() throws {
        let h = try #require(CurlHarness())
        var recs: [Recorder] = []
        var done = 0
        for i in 0..<5 {
            let rec = Recorder()
            rec.onDone = { [loop = h.loop] _ in
                done += 1
                if done == 5 { loop.stop() }
            }
            recs.append(rec)
            _ = h.multi.start(h.call(i % 2 == 0 ? "/hang" : "/stream?n=50&delay=20"), delegate: rec)
        }
        h.loop.schedule(afterMillis: 60) { [multi = h.multi] in
            let dump = multi.stateDescription
            #expect(dump.contains("transfers"))
            print(dump)
            multi.close()
        }
        h.run()
        #expect(recs.allSatisfy { $0.results.count == 1 && $0.error?.kind == .cancelled })
        let late = Recorder()
        late.onDone = { [loop = h.loop] _ in loop.stop() }
        _ = h.multi.start(h.call("/stream"), delegate: late)
        h.run()
        #expect(late.error?.kind == .transport)  // refused after close, reported asynchronously
        h.expectNoLeaks()
    }

    @Test func errorMessagesAreReadable() {
        #expect(TransferError(.timeout(.firstByte)).description == "upstream first byte timeout")
        #expect(TransferError(.connectFailed, curlCode: 7, detail: "x").description == "could not connect to upstream (curl 7): x")
    }
}
