import Testing
import Providers

@Suite struct SSEDecoderTests {
    func events(_ chunks: [[UInt8]], maxLine: Int = 1 << 20) -> ([SSEEvent], SSEError?) {
        var d = SSEDecoder(maxLineBytes: maxLine)
        var out: [SSEEvent] = []
        do {
            for c in chunks { try c.withUnsafeBytes { try d.feed($0) { out.append(SSEEvent($0)) } } }
            try d.finish { out.append(SSEEvent($0)) }
        } catch let e as SSEError {
            return (out, e)
        } catch {
            return (out, nil)
        }
        return (out, nil)
    }

    func chunks(_ parts: String...) -> [[UInt8]] { parts.map { Array($0.utf8) } }

    @Test func lineEndingsAndFields() {
        let (ev, err) = events(chunks(": comment\r\nevent: a\rdata:x\ndata: y\r\n\r\ndata:  two spaces\n\nid: 1\nretry: 5\nevent: lonely\n\n"))
        #expect(err == nil)
        #expect(ev == [SSEEvent(event: "a", data: "x\ny"), SSEEvent(event: nil, data: " two spaces")])
    }

    @Test func crAtChunkEndThenLFIsOneTerminator() {
        let (ev, _) = events(chunks("data: a\r", "\ndata: b\r", "\n\r", "\n"))
        #expect(ev == [SSEEvent(event: nil, data: "a\nb")])
        // CR followed by a non-LF chunk start is a terminator on its own.
        let (ev2, _) = events(chunks("data: a\r", "\r"))
        #expect(ev2 == [SSEEvent(event: nil, data: "a")])
    }

    @Test func utf8SplitInsideAMultibyteCharacter() {
        let bytes = Array("data: é😀€\n\n".utf8)
        for cut in 1..<bytes.count {
            let (ev, _) = events([Array(bytes[..<cut]), Array(bytes[cut...])])
            #expect(ev == [SSEEvent(event: nil, data: "é😀€")], "cut \(cut)")
        }
        let json = Array("data: {\"choices\":[{\"delta\":{\"content\":\"héllo 😀\"}}]}\n\ndata: [DONE]\n\n".utf8)
        for cut in 1..<json.count {
            #expect(decode(.openai, json, cuts: [cut]) == [.text("héllo 😀"), .done], "cut \(cut)")
        }
    }

    @Test func longLinesAreBoundedErrors() {
        let (_, err) = events([Array(repeating: UInt8(ascii: "a"), count: 100)], maxLine: 64)
        #expect(err != nil)
        let (_, err2) = events(Array(repeating: Array("data: xxxxxxxx".utf8), count: 20), maxLine: 64)
        #expect(err2 != nil)
        let (_, err3) = events(Array(repeating: Array("data: xxxxxxxx\n".utf8), count: 20), maxLine: 64)
        #expect(err3 != nil, "multi-line data is bounded too")
    }

    @Test func malformedChunksBecomeErrorEvents() {
        let events = decode(.openai, "data: {\"choices\":[}\n\ndata: [DONE]\n\n")
        guard case .error(let e)? = events.last, events.count == 1 else {
            Issue.record("got \(events)")
            return
        }
        #expect(e.kind == .malformed)
        #expect(e.apiType == "upstream_error")
    }

    @Test func inStreamErrors() {
        let openAI = decode(.openai, "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\ndata: [DONE]\n\n")
        #expect(openAI.count == 1)
        if case .error(let e)? = openAI.first { #expect(e.kind == .upstreamError && e.message == "boom") }
        let gemini = decode(.gemini, "data: {\"error\":{\"code\":500,\"message\":\"Error\",\"status\":\"INTERNAL\"}}\r\n\r\n")
        if case .error(let e)? = gemini.first { #expect(e.kind == .upstreamError && e.message == "Error") } else { Issue.record("\(gemini)") }
    }

    @Test func geminiSkipsThoughtParts() {
        let s = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"thinking\",\"thought\":true},{\"text\":\"answer\"}]},\"finishReason\":\"MAX_TOKENS\"}]}\r\n\r\n"
        #expect(decode(.gemini, s) == [.text("answer"), .finish(FinishReason(.length, raw: "MAX_TOKENS")), .done])
    }

    @Test func emptyBodiesAreIncomplete() {
        for p in [ProviderKind.openai, .anthropic, .gemini] {
            guard case .error(let e)? = decode(p, "").last else { Issue.record("\(p)"); continue }
            #expect(e.kind == .upstreamIncomplete)
            #expect(e.apiType == "upstream_error")
        }
    }
}

@Suite struct MockModelTests {
    @Test func echoConcatenatesBackToTheUserText() throws {
        let text = "  Hello, big   world! é😀\nnext"
        let req = ChatRequest(model: "mock-echo", system: "be brief", messages: [
            ChatMessage(role: .user, content: "first"), ChatMessage(role: .assistant, content: "ok"), ChatMessage(role: .user, content: text),
        ])
        let plan = try MockModel.plan(for: req)
        #expect(plan.tokens.joined() == text)
        #expect(plan.tokens == ["  Hello, ", "big   ", "world! ", "é😀\n", "next"])
        #expect(plan.usage == Usage(promptTokens: 2 + 1 + 1 + 5, completionTokens: 5, totalTokens: 14))
        #expect(plan.finish.value == "stop")
    }

    @Test func tokensN() throws {
        let plan = try MockModel.plan(for: ChatRequest(model: "mock-tokens-3", messages: []))
        #expect(plan.tokens == ["tok1 ", "tok2 ", "tok3 "])
        let cut = try MockModel.plan(for: ChatRequest(model: "mock-tokens-10", messages: [], maxTokens: 4))
        #expect(cut.tokens.count == 4)
        #expect(cut.finish.value == "length")
        #expect(try MockModel.plan(for: ChatRequest(model: "mock-tokens-0", messages: [])).tokens.isEmpty)
    }

    @Test(arguments: ["mock-nope", "mock-tokens-x", "mock-tokens--1", "mock-tokens-999999999"])
    func unknownMocks(_ name: String) {
        #expect(throws: ProviderError.self) { try MockModel.plan(for: ChatRequest(model: name, messages: [])) }
    }
}
