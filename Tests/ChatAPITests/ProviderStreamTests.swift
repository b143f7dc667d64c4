import Foundation
import Testing
@testable import ChatAPI
import Providers
import Reactor

/// One `mock-upstream` process for this suite, on a port it picks itself.
final class MockUpstreamProcess: @unchecked Sendable {
    let process = Process()
    let port: Int

    init() throws {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var bin = dir.appendingPathComponent("mock-upstream")
        // The test bundle may sit inside an .xctest folder one level down.
        if !FileManager.default.fileExists(atPath: bin.path) {
            bin = dir.deletingLastPathComponent().appendingPathComponent("mock-upstream")
        }
        process.executableURL = bin
        process.arguments = ["--port", "0"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        // The first line names the port: "mock-upstream listening on 127.0.0.1:PORT".
        var line = Data()
        while !line.contains(0x0A) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let p = text.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
            process.terminate()
            throw CocoaError(.fileReadCorruptFile)
        }
        port = p
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
    }
}

/// Records what a provider stream delivers.
final class StreamRecorder: UpstreamStreamDelegate {
    var started = false
    var text = ""
    var tokens = 0
    var usage: Usage?
    var finish: FinishReason?
    var ended = false
    var error: ProviderError?
    var onToken: ((StreamRecorder) -> Void)?

    func upstreamDidStart() { started = true }
    func upstreamDidReceive(_ event: StreamEvent) {
        switch event {
        case .text(let t):
            text += t
            tokens += 1
            onToken?(self)
        case .usage(let u): usage = u
        case .finish(let f): finish = f
        default: break
        }
    }
    func upstreamDidEnd(_ error: ProviderError?) {
        ended = true
        self.error = error
    }
}

/// Each provider end to end through libcurl against the mock upstream's exact wire formats:
/// text, usage, finish reason, every fault, cancellation, pause and resume, and many streams at once.
@Suite(.serialized) final class ProviderStreamTests {
    let mock: MockUpstreamProcess
    let loop: EventLoop
    let multi: CurlMulti

    init() throws {
        mock = try MockUpstreamProcess()
        _ = CurlGlobal.initialize()
        loop = try EventLoop()
        guard let m = CurlMulti(loop: loop) else { throw CocoaError(.featureUnsupported) }
        multi = m
    }

    deinit { multi.close() }

    static let models = ["gpt-5.4-mini", "claude-sonnet-4-6", "gemini-2.5-flash"]

    func config(firstTokenMs: Int = 5_000) -> ProviderConfig {
        let base = "http://127.0.0.1:\(mock.port)"
        return ProviderConfig(openAIKey: "sk-test", anthropicKey: "ak-test", googleKey: "gk-test",
                              openAIBaseURL: base + "/v1", anthropicBaseURL: base, geminiBaseURL: base + "/v1beta")
    }

    /// Starts one stream for `prompt` on `model`.
    func start(_ model: String, _ prompt: String, _ rec: StreamRecorder, firstTokenMs: Int = 5_000) throws -> CurlProviderStream {
        let route = try BuiltInCatalog.make(config()).route(model, random: { 0 }).get()
        let request = try UpstreamRequests.build(ChatRequest(model: model, messages: [ChatMessage(role: .user, content: prompt)]),
                                                 route: route, defaults: config().generation).get()
        guard let decoder = UpstreamRequests.makeStreamDecoder(for: route.deployment.kind) else { throw CocoaError(.featureUnsupported) }
        return CurlProviderStream(multi: multi, request: request, provider: route.provider, decoder: decoder,
                                  timeouts: UpstreamTimeouts(connectMs: 2_000, firstTokenMs: firstTokenMs, idleMs: 5_000), delegate: rec)
    }

    /// Drives the loop until `done` or a watchdog fires (the test then fails with curl's state).
    func run(seconds: Double = 10, until done: () -> Bool) {
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        let t = loop.schedule(afterNanos: UInt64(seconds * 1e9)) {}
        defer { loop.cancel(t) }
        while !done() {
            if monotonicNanos() > deadline {
                Issue.record("watchdog: \(multi.stateDescription)")
                return
            }
            loop.tick(block: true)
        }
    }

    @Test(arguments: models)
    func streamsTextUsageAndFinish(_ model: String) throws {
        let rec = StreamRecorder()
        let s = try start(model, "hi [mock tokens=5 delay=2]", rec)
        run { rec.ended }
        _ = s
        #expect(rec.error == nil)
        #expect(rec.started)
        #expect(rec.tokens == 5)
        #expect(rec.text == "Hello from the mock upstream")
        #expect(rec.finish?.value == "stop")
        #expect(rec.usage?.completionTokens == 5)
        #expect(rec.usage.map { $0.promptTokens + $0.completionTokens == $0.totalTokens } == true)
    }

    @Test(arguments: models)
    func framingSplitAtEveryFewBytesStillDecodes(_ model: String) throws {
        let rec = StreamRecorder()
        let s = try start(model, "echo:naïve café ✓ done", rec)
        run { rec.ended }
        _ = s
        #expect(rec.error == nil)
        #expect(rec.text == "naïve café ✓ done")
        // Now the same with the mock writing 3-byte pieces (splits inside UTF-8 and CRLF pairs).
        let rec2 = StreamRecorder()
        let s2 = try start(model, "hi [mock tokens=4 split=3]", rec2)
        run { rec2.ended }
        _ = s2
        #expect(rec2.error == nil)
        #expect(rec2.tokens == 4)
    }

    @Test(arguments: models)
    func rateLimitBeforeTheStreamCarriesRetryHint(_ model: String) throws {
        let rec = StreamRecorder()
        let s = try start(model, "hi [mock fault=429]", rec)
        run { rec.ended }
        _ = s
        #expect(rec.error?.kind == .rateLimited)
        #expect(rec.error?.httpStatus == 429)
        #expect((rec.error?.retryAfter ?? 0) > 0)
        #expect(!rec.started)
    }

    @Test(arguments: models)
    func serverErrorBeforeTheStreamIsUpstreamError(_ model: String) throws {
        let rec = StreamRecorder()
        let s = try start(model, "hi [mock fault=500]", rec)
        run { rec.ended }
        _ = s
        #expect(rec.error?.upstreamStatus == 500)
        #expect(rec.error?.httpStatus == 502)
    }

    @Test func anthropicOverloadedIs503() throws {
        let rec = StreamRecorder()
        let s = try start("claude-sonnet-4-6", "hi [mock fault=529]", rec)
        run { rec.ended }
        _ = s
        #expect(rec.error?.kind == .overloaded)
        #expect(rec.error?.httpStatus == 503)
    }

    @Test(arguments: models)
    func errorMidStreamKeepsWhatArrived(_ model: String) throws {
        let rec = StreamRecorder()
        let s = try start(model, "hi [mock tokens=6 fault=midstream after=2]", rec)
        run { rec.ended }
        _ = s
        #expect(rec.tokens == 2)
        #expect(rec.error != nil)
        #expect(rec.error?.kind != .upstreamIncomplete, "the provider's own error, not a truncation")
    }

    @Test(arguments: models)
    func streamWithoutTerminatorIsIncomplete(_ model: String) throws {
        let rec = StreamRecorder()
        let s = try start(model, "hi [mock tokens=4 fault=truncate after=3]", rec)
        run { rec.ended }
        _ = s
        #expect(rec.tokens == 3)
        #expect(rec.error?.kind == .upstreamIncomplete)
    }

    @Test(arguments: models)
    func connectionResetMidStreamIsAnError(_ model: String) throws {
        let rec = StreamRecorder()
        let s = try start(model, "hi [mock tokens=5 fault=reset after=2]", rec)
        run { rec.ended }
        _ = s
        #expect(rec.tokens == 2)
        #expect(rec.error?.kind == .upstreamIncomplete || rec.error?.kind == .upstreamError)
    }

    @Test func malformedChunkIsAnErrorEventNotACrash() throws {
        let rec = StreamRecorder()
        let s = try start("gpt-5.4-mini", "hi [mock tokens=4 fault=malformed after=1]", rec)
        run { rec.ended }
        _ = s
        #expect(rec.tokens == 1)
        #expect(rec.error?.kind == .malformed || rec.error?.kind == .upstreamIncomplete)
    }

    @Test func hangingUpstreamHitsTheFirstTokenTimeout() throws {
        let rec = StreamRecorder()
        let began = monotonicNanos()
        let s = try start("gpt-5.4-mini", "hi [mock fault=hang]", rec, firstTokenMs: 300)
        run { rec.ended }
        _ = s
        #expect(rec.error?.kind == .upstreamTimeout)
        #expect(rec.error?.httpStatus == 504)
        #expect(monotonicNanos() - began < 3_000_000_000)
    }

    @Test func connectionRefusedHasAClearMessage() throws {
        let fd = try Sockets.listen(host: "127.0.0.1", port: 0, reusePort: false)
        let closedPort = Sockets.localPort(fd)
        close(fd)
        let rec = StreamRecorder()
        let request = UpstreamRequest(url: "http://127.0.0.1:\(closedPort)/v1/chat/completions",
                                      headers: [("Content-Type", "application/json")], body: Array("{}".utf8))
        let s = CurlProviderStream(multi: multi, request: request, provider: .openai, decoder: OpenAIStreamDecoder(),
                                   timeouts: UpstreamTimeouts(connectMs: 2_000, firstTokenMs: 2_000, idleMs: 2_000), delegate: rec)
        run { rec.ended }
        _ = s
        #expect(rec.error?.kind == .connectFailed)
        #expect(rec.error?.message.contains("could not connect") == true)
    }

    @Test(arguments: models)
    func cancelBeforeTheFirstByteStopsEverything(_ model: String) throws {
        let rec = StreamRecorder()
        let s = try start(model, "hi [mock tokens=5 first=2000]", rec)
        var cancelled = false
        loop.schedule(afterMillis: 100) { s.cancel(); cancelled = true }
        run { cancelled }
        // No callback after cancel; curl forgets the transfer at the next tick.
        run(seconds: 2) { multi.transferCount == 0 }
        #expect(!rec.ended)
        #expect(rec.tokens == 0)
        #expect(multi.transferCount == 0)
    }

    @Test(arguments: models)
    func cancelAfterTheFirstTokenStopsDelivery(_ model: String) throws {
        let rec = StreamRecorder()
        let s = try start(model, "hi [mock tokens=50 delay=20]", rec)
        rec.onToken = { r in if r.tokens == 2 { s.cancel() } }
        run { rec.tokens >= 2 }
        var waited = false
        loop.schedule(afterMillis: 200) { waited = true }
        run { waited }
        #expect(rec.tokens == 2)
        #expect(!rec.ended)
        #expect(multi.transferCount == 0)
    }

    @Test(arguments: models)
    func pausedTransferResumesWithEveryToken(_ model: String) throws {
        let rec = StreamRecorder()
        let s = try start(model, "hi [mock tokens=12 delay=5]", rec)
        var resumed = false
        rec.onToken = { r in
            if r.tokens == 3 {
                s.pause()
                self.loop.schedule(afterMillis: 300) { resumed = true; s.resume() }
            }
        }
        run { rec.ended }
        #expect(resumed)
        #expect(rec.error == nil)
        #expect(rec.tokens == 12)
    }

    @Test func twoHundredConcurrentStreamsOnOneLoop() throws {
        var recs: [StreamRecorder] = []
        var streams: [CurlProviderStream] = []
        for i in 0..<200 {
            let rec = StreamRecorder()
            recs.append(rec)
            streams.append(try start(Self.models[i % 3], "hi [mock tokens=10 delay=5]", rec))
        }
        run(seconds: 30) { recs.allSatisfy(\.ended) }
        #expect(recs.allSatisfy { $0.error == nil && $0.tokens == 10 })
        #expect(streams.count == 200)
    }
}
