// libFuzzer entry point for the three provider stream decoders (OpenAI, Anthropic, Gemini) on
// top of the SSE decoder and JSONCore. Built by scripts/fuzz.sh in two steps: Sources/JSONCore as
// its own module, then all of Sources/Providers with this file (the providers import JSONCore).
//
// The first input byte picks the decoder (OpenAI, OpenAI with `finishEndsStream`, Anthropic,
// Gemini); the rest is the response body. Besides "no crash / no ASan report", it checks:
// - the StreamEvent sequence does not depend on how the body was split into reads (whole, byte by
//   byte, fixed-size pieces, a cut derived from the input);
// - the contract in Sources/Providers/StreamEvent.swift: after `finish` the stream has ended with
//   exactly one terminal event (`done` or `error`), it is the last one, and feeding or finishing
//   again emits nothing.
// A broken invariant calls fatalError, which libFuzzer reports as a crash with the input saved.

private func makeDecoder(_ selector: UInt8) -> any ProviderStreamDecoder {
    switch selector % 4 {
    case 0: return OpenAIStreamDecoder()
    case 1: return OpenAIStreamDecoder(finishEndsStream: true)
    case 2: return AnthropicStreamDecoder()
    default: return GeminiStreamDecoder()
    }
}

private func isTerminal(_ event: StreamEvent) -> Bool {
    switch event {
    case .done, .error: return true
    default: return false
    }
}

private func run(_ selector: UInt8, _ body: ArraySlice<UInt8>, pieceSizes: (Int) -> Int) -> [StreamEvent] {
    var decoder = makeDecoder(selector)
    var events: [StreamEvent] = []
    var offset = body.startIndex
    var readIndex = 0
    while offset < body.endIndex {
        let size = max(1, min(pieceSizes(readIndex), body.endIndex - offset))
        readIndex += 1
        Array(body[offset..<(offset + size)]).withUnsafeBytes { decoder.feed($0) { events.append($0) } }
        offset += size
    }
    decoder.finish { events.append($0) }

    guard let last = events.last, isTerminal(last) else { fatalError("stream not ended by done/error: \(events)") }
    if events.dropLast().contains(where: isTerminal) { fatalError("event after the terminal one: \(events)") }
    var late: [StreamEvent] = []
    Array("data: {}\n\n".utf8).withUnsafeBytes { decoder.feed($0) { late.append($0) } }
    decoder.finish { late.append($0) }
    if !late.isEmpty { fatalError("events after the stream ended: \(late)") }
    return events
}

@_cdecl("LLVMFuzzerTestOneInput")
public func providerStreamFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let selector = input[0]
    let body = input[1...]
    let whole = run(selector, body) { _ in Int.max }
    let cut = body.count > 0 ? Int(selector / 4) % body.count + 1 : 1
    let patterns: [(Int) -> Int] = [
        { _ in 1 },
        { _ in 7 },
        { index in index == 0 ? cut : Int.max },
        { index in [3, 1, 11, 2, 64][index % 5] },
    ]
    for pattern in patterns {
        let split = run(selector, body, pieceSizes: pattern)
        if split != whole { fatalError("events depend on read boundaries:\n\(whole)\nvs\n\(split)") }
    }
    return 0
}
