// Response-side encoders: status line + headers, chunked framing, Server-Sent Events frames.
// Standard library only (see HTTPTypes.swift). All of them append to a caller-owned [UInt8] so a
// connection can build a whole response in one buffer and write it with one syscall.

/// A response status line and header block.
public struct HTTPResponseHead: Sendable, Equatable {
    public var status: Int
    public var headers: HTTPHeaders
    /// 1 for "HTTP/1.1", 0 for "HTTP/1.0" (answer a 1.0 client in its own version).
    public var versionMinor: Int

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), versionMinor: Int = 1) {
        self.status = status
        self.headers = headers
        self.versionMinor = versionMinor
    }

    /// Appends "HTTP/1.x SSS Reason\r\n", one "name: value\r\n" per header, and the empty line.
    ///
    /// A status outside 100...999 cannot be written as the three digits HTTP requires, so it is
    /// sent as 500. CR, LF and NUL in header names or values are replaced by spaces: header
    /// values often carry client-influenced text, and a raw newline there would let it inject
    /// headers or a whole second response (response splitting).
    public func serialize(into buffer: inout [UInt8]) {
        let status = (100...999).contains(status) ? status : 500
        appendStatic(versionMinor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ", to: &buffer)
        buffer.append(UInt8(ascii: "0") + UInt8(status / 100))
        buffer.append(UInt8(ascii: "0") + UInt8(status / 10 % 10))
        buffer.append(UInt8(ascii: "0") + UInt8(status % 10))
        buffer.append(UInt8(ascii: " "))
        appendSanitized(Self.reasonPhrase(status), to: &buffer)
        appendStatic("\r\n", to: &buffer)
        for (name, value) in headers {
            appendSanitized(name, to: &buffer)
            appendStatic(": ", to: &buffer)
            appendSanitized(value, to: &buffer)
            appendStatic("\r\n", to: &buffer)
        }
        appendStatic("\r\n", to: &buffer)
    }

    /// The serialized head as a new array.
    public func serialized() -> [UInt8] {
        var buffer: [UInt8] = []
        serialize(into: &buffer)
        return buffer
    }

    /// The standard reason phrase (RFC 9110 §15 plus 429 from RFC 6585); "" for codes without
    /// one, which the status-line grammar allows ("HTTP/1.1 599 ").
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 203: return "Non-Authoritative Information"
        case 204: return "No Content"
        case 205: return "Reset Content"
        case 206: return "Partial Content"
        case 300: return "Multiple Choices"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 402: return "Payment Required"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 406: return "Not Acceptable"
        case 407: return "Proxy Authentication Required"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 411: return "Length Required"
        case 412: return "Precondition Failed"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 416: return "Range Not Satisfiable"
        case 417: return "Expectation Failed"
        case 421: return "Misdirected Request"
        case 422: return "Unprocessable Content"
        case 426: return "Upgrade Required"
        case 428: return "Precondition Required"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return ""
        }
    }
}

/// Literals as one memcpy: `append(contentsOf: "…".utf8)` goes through the generic sequence
/// path (~200 instructions per call, ten calls per response head).
@inline(__always)
private func appendStatic(_ s: StaticString, to buffer: inout [UInt8]) {
    s.withUTF8Buffer { buffer.append(contentsOf: $0) }
}

private func appendSanitized(_ text: String, to buffer: inout [UInt8]) {
    // Fast path (nearly every header): a native string with nothing to replace is appended in
    // one copy instead of byte by byte; this was ~8% of a health response's instructions.
    let copied: Bool? = text.utf8.withContiguousStorageIfAvailable { bytes in
        for byte in bytes where byte == 0x0D || byte == 0x0A || byte == 0x00 { return false }
        buffer.append(contentsOf: bytes)
        return true
    }
    if copied == true { return }
    for byte in text.utf8 {
        buffer.append(byte == 0x0D || byte == 0x0A || byte == 0x00 ? UInt8(ascii: " ") : byte)
    }
}

/// `Transfer-Encoding: chunked` framing for streamed responses.
public enum ChunkedEncoding {
    /// The last-chunk plus the empty trailer section: ends a chunked body.
    public static let terminator: [UInt8] = Array("0\r\n\r\n".utf8)

    /// Appends one chunk ("<hex size>\r\n<bytes>\r\n"). Empty input appends nothing, because a
    /// zero-size chunk would be read as the terminator and end the body early.
    public static func appendChunk(_ bytes: UnsafeRawBufferPointer, to buffer: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        appendHex(bytes.count, to: &buffer)
        buffer.append(contentsOf: "\r\n".utf8)
        buffer.append(contentsOf: bytes)
        buffer.append(contentsOf: "\r\n".utf8)
    }

    public static func appendChunk(_ bytes: [UInt8], to buffer: inout [UInt8]) {
        bytes.withUnsafeBytes { appendChunk($0, to: &buffer) }
    }

    /// Appends the UTF-8 bytes of `text` as one chunk.
    public static func appendChunk(_ text: String, to buffer: inout [UInt8]) {
        appendChunk(Array(text.utf8), to: &buffer)
    }

    /// Appends one chunk whose payload `encode` appends in place, so the payload is written once,
    /// where it will be sent from. The size line is reserved with `widthHint` hex digits before the
    /// payload exists and filled in after; a wrong guess moves the payload (a memmove, no
    /// allocation). Appends nothing when `encode` appends nothing. Returns the payload's size.
    @discardableResult
    public static func appendChunk(to buffer: inout [UInt8], widthHint: Int, _ encode: (inout [UInt8]) -> Void) -> Int {
        let start = buffer.count
        let guess = max(1, min(widthHint, 16))
        for _ in 0..<guess { buffer.append(UInt8(ascii: "0")) }
        buffer.append(13)
        buffer.append(10)
        let payloadStart = buffer.count
        encode(&buffer)
        let n = buffer.count - payloadStart
        guard n > 0 else {
            buffer.removeLast(buffer.count - start)
            return 0
        }
        let width = hexWidth(n)
        if width != guess {
            buffer.replaceSubrange(start..<start + guess, with: repeatElement(UInt8(ascii: "0"), count: width))
        }
        var v = n
        var i = start + width - 1
        while i >= start {
            buffer[i] = hexDigit(v & 0xF)
            v >>= 4
            i -= 1
        }
        buffer.append(13)
        buffer.append(10)
        return n
    }

    /// Hex digits of a positive size.
    public static func hexWidth(_ value: Int) -> Int {
        max(1, (Int.bitWidth - value.leadingZeroBitCount + 3) / 4)
    }

    @inline(__always)
    private static func hexDigit(_ d: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: d < 10 ? 48 + d : 87 + d)
    }

    private static func appendHex(_ value: Int, to buffer: inout [UInt8]) {
        var shift = (hexWidth(value) - 1) * 4
        while shift >= 0 {
            buffer.append(hexDigit((value >> shift) & 0xF))
            shift -= 4
        }
    }
}

/// Server-Sent Events framing (WHATWG HTML §9.2), as used for streamed chat completions.
public enum SSEFrame {
    /// Appends one event: optional "event:" and "id:" fields, then one "data:" line per line of
    /// `data`, then the blank line that dispatches the event.
    ///
    /// The SSE parser treats \r\n, \n and \r alike as line ends, so `data` is split on all three;
    /// the client rejoins the data lines with \n, so multi-line payloads survive (with line ends
    /// normalised to \n). `event` and `id` are single-line fields: any line-end characters in
    /// them are dropped rather than allowed to start a new field. An id containing NUL would be
    /// ignored by clients, so NUL is dropped from ids too.
    public static func append(event: String? = nil, id: String? = nil, data: String, to buffer: inout [UInt8]) {
        if let event {
            buffer.append(contentsOf: "event: ".utf8)
            appendSingleLine(event, to: &buffer, dropNUL: false)
            buffer.append(UInt8(ascii: "\n"))
        }
        if let id {
            buffer.append(contentsOf: "id: ".utf8)
            appendSingleLine(id, to: &buffer, dropNUL: true)
            buffer.append(UInt8(ascii: "\n"))
        }
        appendLines(prefix: "data: ", data, to: &buffer)
        buffer.append(UInt8(ascii: "\n"))
    }

    /// Appends a comment frame (": text\n\n"). Clients ignore comments; they keep idle streams
    /// (and intermediaries' idle timers) alive. Multi-line text becomes several comment lines.
    public static func appendComment(_ text: String, to buffer: inout [UInt8]) {
        appendLines(prefix: ": ", text, to: &buffer)
        buffer.append(UInt8(ascii: "\n"))
    }

    /// Writes `prefix + line + "\n"` for every line of `text`, treating \r\n, \n and \r as line
    /// ends. A trailing line end yields a final empty line, so "a\n" round-trips as "a\n".
    private static func appendLines(prefix: String, _ text: String, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: prefix.utf8)
        var previousWasCR = false
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\r"):
                buffer.append(UInt8(ascii: "\n"))
                buffer.append(contentsOf: prefix.utf8)
                previousWasCR = true
            case UInt8(ascii: "\n"):
                // The LF of a CRLF pair: the CR already ended the line.
                if !previousWasCR {
                    buffer.append(UInt8(ascii: "\n"))
                    buffer.append(contentsOf: prefix.utf8)
                }
                previousWasCR = false
            default:
                buffer.append(byte)
                previousWasCR = false
            }
        }
        buffer.append(UInt8(ascii: "\n"))
    }

    private static func appendSingleLine(_ text: String, to buffer: inout [UInt8], dropNUL: Bool) {
        for byte in text.utf8 where byte != UInt8(ascii: "\r") && byte != UInt8(ascii: "\n") {
            if dropNUL && byte == 0 { continue }
            buffer.append(byte)
        }
    }
}
