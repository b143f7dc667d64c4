// The oracle for Fuzz/SSEDecoderFuzz.swift: the SSE rules of docs/wire-formats.md §1 applied
// naively to the whole body at once (split into lines first, then fields), with the same size
// limit as SSEDecoder: a line, or an event's joined data, longer than `maxLineBytes` stops the
// stream (events completed before it stay delivered). Shares no code with SSEDecoder.

enum SSEReferenceDecoder {
    static func decode(_ body: [UInt8], maxLineBytes: Int) -> DecodedStream {
        var stream = DecodedStream()
        var data: [UInt8] = []
        var hasData = false
        var name: [UInt8]?

        func dispatch() {
            // An event without any data line is not dispatched (WHATWG), and either way the
            // next event starts empty.
            if hasData { stream.events.append(DecodedEvent(name: name, data: data)) }
            data = []
            hasData = false
            name = nil
        }

        for line in lines(body) {
            if line.count > maxLineBytes {
                stream.refused = true
                return stream
            }
            if line.isEmpty {
                dispatch()
                continue
            }
            if line[0] == UInt8(ascii: ":") { continue }
            let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.count
            let field = Array(line[..<colon])
            var value = colon < line.count ? Array(line[(colon + 1)...]) : []
            if value.first == UInt8(ascii: " ") { value.removeFirst() }
            if field == Array("data".utf8) {
                let joined = (hasData ? data + [0x0A] : data) + value
                if joined.count > maxLineBytes {
                    stream.refused = true
                    return stream
                }
                data = joined
                hasData = true
            } else if field == Array("event".utf8) {
                name = value
            }
        }
        dispatch()
        return stream
    }

    /// Lines ended by CRLF, CR or LF; an unterminated last line counts (the body's end ends it).
    static func lines(_ body: [UInt8]) -> [[UInt8]] {
        var result: [[UInt8]] = []
        var current: [UInt8] = []
        var i = 0
        while i < body.count {
            let b = body[i]
            if b == 0x0D || b == 0x0A {
                result.append(current)
                current = []
                if b == 0x0D, i + 1 < body.count, body[i + 1] == 0x0A { i += 1 }
            } else {
                current.append(b)
            }
            i += 1
        }
        if !current.isEmpty { result.append(current) }
        return result
    }
}
