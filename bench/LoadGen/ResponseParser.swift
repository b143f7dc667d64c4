/// Why a response could not be parsed. A value, counted as a `protocol` error by the harness.
struct ResponseParseError: Error, Sendable, Equatable, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Incremental HTTP/1.1 response parser: status line, headers, then a body framed by
/// `Transfer-Encoding: chunked`, `Content-Length`, or the connection's end. Feed it whatever
/// arrived; it buffers at most one unfinished line (bounded) and hands body bytes through
/// without copying them. One response at a time (the harness never pipelines).
struct HTTPResponseParser {
    enum Body: Equatable {
        case none
        case length(Int)
        case chunkSize
        case chunkData(Int)
        case chunkDataEnd
        case trailers
        case untilClose
    }
    enum State: Equatable { case statusLine, headers, body(Body), complete }

    static let maxLine = 16 * 1024
    static let maxHeaderBytes = 64 * 1024

    private(set) var state = State.statusLine
    private(set) var status = 0
    /// False when the server asked to close (or spoke HTTP/1.0 without keep-alive).
    private(set) var keepAlive = true
    private(set) var contentType = ""
    private var line: [UInt8] = []
    private var headerBytes = 0
    private var contentLength: Int?
    private var chunked = false
    private var isHTTP10 = false
    /// The request was HEAD: no body whatever the headers say.
    var noBodyExpected = false

    init() { line.reserveCapacity(256) }

    mutating func reset() {
        state = .statusLine
        status = 0
        keepAlive = true
        contentType = ""
        line.removeAll(keepingCapacity: true)
        headerBytes = 0
        contentLength = nil
        chunked = false
        isHTTP10 = false
    }

    var isComplete: Bool { state == .complete }
    var headersDone: Bool {
        switch state {
        case .statusLine, .headers: return false
        default: return true
        }
    }

    /// Consumes `bytes`. `onHead` runs once when the headers are complete; `onBody` gets body
    /// bytes (chunk framing removed). Returns the number of bytes consumed: less than
    /// `bytes.count` only when the response completed before the end of the input.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, onHead: (Int) -> Void,
                       onBody: (UnsafeRawBufferPointer) -> Void) throws(ResponseParseError) -> Int {
        var i = 0
        let n = bytes.count
        while i < n {
            switch state {
            case .complete:
                return i
            case .statusLine, .headers, .body(.chunkSize), .body(.chunkDataEnd), .body(.trailers):
                // Line-oriented states.
                var j = i
                while j < n && bytes[j] != 0x0A { j += 1 }
                let piece = UnsafeRawBufferPointer(rebasing: bytes[i..<j])
                guard line.count + piece.count <= HTTPResponseParser.maxLine else {
                    throw ResponseParseError(message: "response line longer than \(HTTPResponseParser.maxLine) bytes")
                }
                if j == n {
                    line.append(contentsOf: piece)
                    return n
                }
                var whole: [UInt8] = []
                swap(&whole, &line)
                whole.append(contentsOf: piece)
                if whole.last == 0x0D { whole.removeLast() }
                i = j + 1
                try processLine(whole, onHead: onHead)
                whole.removeAll(keepingCapacity: true)
                swap(&whole, &line)
            case .body(.length(let remaining)):
                let take = min(remaining, n - i)
                onBody(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + take)]))
                i += take
                state = remaining - take == 0 ? .complete : .body(.length(remaining - take))
            case .body(.chunkData(let remaining)):
                let take = min(remaining, n - i)
                onBody(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + take)]))
                i += take
                state = remaining - take == 0 ? .body(.chunkDataEnd) : .body(.chunkData(remaining - take))
            case .body(.untilClose):
                onBody(UnsafeRawBufferPointer(rebasing: bytes[i..<n]))
                return n
            case .body(.none):
                state = .complete
            }
        }
        if state == .body(.none) { state = .complete }
        return n
    }

    /// The connection ended. Returns true when that completes the response (a close-delimited body).
    mutating func connectionEnded() -> Bool {
        if state == .body(.untilClose) {
            state = .complete
            return true
        }
        return state == .complete
    }

    private mutating func processLine(_ l: [UInt8], onHead: (Int) -> Void) throws(ResponseParseError) {
        switch state {
        case .statusLine:
            // Tolerate stray empty lines before a status line (RFC 9112 §2.2).
            if l.isEmpty { return }
            try parseStatusLine(l)
            state = .headers
            headerBytes = l.count
        case .headers:
            headerBytes += l.count + 2
            guard headerBytes <= HTTPResponseParser.maxHeaderBytes else {
                throw ResponseParseError(message: "response headers larger than \(HTTPResponseParser.maxHeaderBytes) bytes")
            }
            if l.isEmpty {
                if status >= 100 && status < 200 {
                    // Interim response: the real one follows.
                    let keep = noBodyExpected
                    reset()
                    noBodyExpected = keep
                    return
                }
                if isHTTP10 && keepAlive == true && !sawKeepAliveHeader { keepAlive = false }
                if noBodyExpected || status == 204 || status == 304 {
                    state = .body(.none)
                } else if chunked {
                    state = .body(.chunkSize)
                } else if let cl = contentLength {
                    state = cl == 0 ? .body(.none) : .body(.length(cl))
                } else {
                    keepAlive = false
                    state = .body(.untilClose)
                }
                onHead(status)
                if state == .body(.none) { state = .complete }
                return
            }
            try parseHeader(l)
        case .body(.chunkSize):
            var size = 0
            var digits = 0
            for b in l {
                let v: Int
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): v = Int(b - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): v = Int(b - UInt8(ascii: "a")) + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): v = Int(b - UInt8(ascii: "A")) + 10
                case UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t"): v = -1
                default: throw ResponseParseError(message: "bad chunk size line")
                }
                if v < 0 { break }
                digits += 1
                guard digits <= 12 else { throw ResponseParseError(message: "chunk size too large") }
                size = size * 16 + v
            }
            guard digits > 0 else { throw ResponseParseError(message: "empty chunk size") }
            state = size == 0 ? .body(.trailers) : .body(.chunkData(size))
        case .body(.chunkDataEnd):
            guard l.isEmpty else { throw ResponseParseError(message: "chunk not followed by CRLF") }
            state = .body(.chunkSize)
        case .body(.trailers):
            if l.isEmpty { state = .complete }
        default:
            break
        }
    }

    private var sawKeepAliveHeader = false

    private mutating func parseStatusLine(_ l: [UInt8]) throws(ResponseParseError) {
        // HTTP/1.x SP 3DIGIT [SP reason]
        guard l.count >= 12, l[0] == UInt8(ascii: "H"), l[4] == UInt8(ascii: "/"), l[8] == UInt8(ascii: " ") else {
            throw ResponseParseError(message: "bad status line")
        }
        isHTTP10 = l[7] == UInt8(ascii: "0")
        sawKeepAliveHeader = false
        var s = 0
        for k in 9..<12 {
            let b = l[k]
            guard b >= 0x30 && b <= 0x39 else { throw ResponseParseError(message: "bad status code") }
            s = s * 10 + Int(b - 0x30)
        }
        status = s
    }

    private mutating func parseHeader(_ l: [UInt8]) throws(ResponseParseError) {
        guard let colon = l.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
            throw ResponseParseError(message: "header line without a colon")
        }
        var vs = colon + 1
        var ve = l.count
        while vs < ve && (l[vs] == 0x20 || l[vs] == 0x09) { vs += 1 }
        while ve > vs && (l[ve - 1] == 0x20 || l[ve - 1] == 0x09) { ve -= 1 }
        let name = l[0..<colon]
        let value = l[vs..<ve]
        if HTTPResponseParser.equalsIgnoringCase(name, "content-length") {
            var v = 0
            guard !value.isEmpty, value.count <= 15 else { throw ResponseParseError(message: "bad content-length") }
            for b in value {
                guard b >= 0x30 && b <= 0x39 else { throw ResponseParseError(message: "bad content-length") }
                v = v * 10 + Int(b - 0x30)
            }
            contentLength = v
        } else if HTTPResponseParser.equalsIgnoringCase(name, "transfer-encoding") {
            if HTTPResponseParser.containsIgnoringCase(value, "chunked") { chunked = true }
        } else if HTTPResponseParser.equalsIgnoringCase(name, "connection") {
            if HTTPResponseParser.containsIgnoringCase(value, "close") { keepAlive = false }
            if HTTPResponseParser.containsIgnoringCase(value, "keep-alive") { sawKeepAliveHeader = true }
        } else if HTTPResponseParser.equalsIgnoringCase(name, "content-type") {
            contentType = String(decoding: value, as: UTF8.self)
        }
    }

    static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b + 32 : b }

    static func equalsIgnoringCase(_ a: ArraySlice<UInt8>, _ lit: StaticString) -> Bool {
        let n = lit.utf8CodeUnitCount
        guard a.count == n else { return false }
        let p = lit.utf8Start
        var k = 0
        for b in a {
            if lower(b) != p[k] { return false }
            k += 1
        }
        return true
    }

    static func containsIgnoringCase(_ a: ArraySlice<UInt8>, _ lit: StaticString) -> Bool {
        let n = lit.utf8CodeUnitCount
        guard a.count >= n else { return false }
        let p = lit.utf8Start
        let base = a.startIndex
        for s in 0...(a.count - n) {
            var ok = true
            for k in 0..<n where lower(a[base + s + k]) != p[k] { ok = false; break }
            if ok { return true }
        }
        return false
    }
}
