// libFuzzer entry point for the SSE decoder. Built standalone, together with
// Sources/Providers/SSEDecoder.swift only (stdlib-only by design), by scripts/fuzz.sh.
//
// Besides "no crash / no ASan report", it checks on every input:
// - the events (name and data, byte for byte) and whether the stream is refused do not depend on
//   how the input was split into reads: whole, byte by byte, fixed-size pieces, a cut derived from
//   the input, and pieces interleaved with empty reads all give the same result;
// - that result is what a naive whole-buffer reading of the rules in docs/wire-formats.md §1 gives
//   (Fuzz/SSEReferenceDecoder.swift), including where the size limit stops the stream;
// - the buffers stay bounded: after every read (refused or not) the pending line, the assembled
//   data and the event name each hold at most `maxLineBytes`: an oversize line or event is
//   refused, never grown;
// - an event name never contains CR or LF, and data only contains LF as the join of data lines.
// The limit is small and derived from the first input byte, so short inputs reach it.
// A broken invariant calls fatalError, which libFuzzer reports as a crash with the input saved.

/// One dispatched event, copied out of the decoder's borrowed buffers.
struct DecodedEvent: Equatable {
    var name: [UInt8]?
    var data: [UInt8]
}

/// Everything a stream produced: its events, and whether the decoder refused it.
struct DecodedStream: Equatable {
    var events: [DecodedEvent] = []
    var refused = false
}

private func checkBounds(_ decoder: SSEDecoder) {
    let limit = decoder.maxLineBytes
    if decoder.line.count > limit || decoder.data.count > limit || decoder.eventName.count > limit {
        fatalError("buffers exceed \(limit): line \(decoder.line.count), data \(decoder.data.count), name \(decoder.eventName.count)")
    }
}

private func record(_ view: SSEEventView, into stream: inout DecodedStream) {
    let event = DecodedEvent(name: view.event.map { Array($0) }, data: Array(view.data))
    if let name = event.name, name.contains(0x0A) || name.contains(0x0D) { fatalError("event name with a line break") }
    if event.data.contains(0x0D) { fatalError("data with a CR") }
    stream.events.append(event)
}

/// The caller loop a provider runs: feed each read as it comes, then `finish` at end of body.
/// A `pieceSizes` of 0 is an empty read.
private func decode(_ input: [UInt8], maxLineBytes: Int, pieceSizes: (Int) -> Int) -> DecodedStream {
    var decoder = SSEDecoder(maxLineBytes: maxLineBytes)
    var stream = DecodedStream()
    var offset = 0
    var readIndex = 0
    var guardrail = 0
    while offset < input.count {
        guardrail += 1
        if guardrail > 4 * input.count + 4 { fatalError("read loop without progress") }
        let size = max(0, min(pieceSizes(readIndex), input.count - offset))
        readIndex += 1
        let piece = Array(input[offset..<(offset + size)])
        offset += size
        var refused = false
        piece.withUnsafeBytes { raw in
            do throws(SSEError) {
                try decoder.feed(raw) { record($0, into: &stream) }
            } catch {
                refused = true
            }
        }
        checkBounds(decoder)
        if refused {
            stream.refused = true
            return stream
        }
    }
    do throws(SSEError) {
        try decoder.finish { record($0, into: &stream) }
    } catch {
        stream.refused = true
    }
    checkBounds(decoder)
    return stream
}

@_cdecl("LLVMFuzzerTestOneInput")
public func sseDecoderFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let maxLineBytes = size > 0 ? 4 + Int(input[0] % 61) : 16
    let whole = decode(input, maxLineBytes: maxLineBytes) { _ in Int.max }
    let expected = SSEReferenceDecoder.decode(input, maxLineBytes: maxLineBytes)
    if whole != expected { fatalError("decoder and reference disagree:\n\(whole)\nvs\n\(expected)") }

    let cut = size > 1 ? Int(input[1]) % size : 0
    let patterns: [(Int) -> Int] = [
        { _ in 1 },
        { _ in 7 },
        { index in index == 0 ? cut : Int.max },
        { index in [3, 1, 11, 2, 64][index % 5] },
        // Empty reads between real ones must change nothing (a CR pending across them included).
        { index in index % 2 == 0 ? 0 : [1, 5, 2][index % 3] },
    ]
    for pattern in patterns {
        let split = decode(input, maxLineBytes: maxLineBytes, pieceSizes: pattern)
        if split != whole { fatalError("result depends on read boundaries:\n\(whole)\nvs\n\(split)") }
    }
    return 0
}
