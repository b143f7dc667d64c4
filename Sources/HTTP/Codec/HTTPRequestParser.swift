// Incremental HTTP/1.1 request parser (RFC 9112), standard library only.
//
// Design notes:
// - The parser consumes the head line by line: every complete line is validated and folded into
//   the parser's state, and `consumed` tells the caller to drop it. Only the current, incomplete
//   line stays in the caller's buffer, and `scanned` remembers how much of it was already searched
//   for LF, so byte-at-a-time arrival costs O(n) overall instead of rescanning the buffer.
// - Limits are checked on the incomplete line too, with exactly the same predicates (applied to
//   a prefix) as on the complete line, so the status for a given byte stream never depends on how
//   it was split into reads: early detection only makes the refusal earlier, never different.
// - Line ends: CRLF or bare LF (RFC 9112 §2.2 allows accepting LF). A CR anywhere else is an error.

private let LF: UInt8 = 0x0A
private let CR: UInt8 = 0x0D
private let SP: UInt8 = 0x20
private let HTAB: UInt8 = 0x09

/// An incremental, allocation-light HTTP/1.1 request parser for one connection.
///
/// Feed it the connection's unread bytes; it returns how many it consumed and at most one result.
/// Drop the consumed bytes, and call again with the remainder plus new data. Because one call
/// yields at most one result, loop while the result is not `.needMore` to drain pipelined
/// requests. After `.failed`, every call returns the same failure and consumes nothing.
public struct HTTPRequestParser: Sendable {
    /// Longest method token accepted; longer ones are refused (400) while the line is arriving.
    public static let maxMethodBytes = 32
    /// Longest chunk-size line (size plus ignored extensions) accepted (400 beyond).
    public static let maxChunkLineBytes = 1024
    /// Empty lines tolerated before a request line (RFC 9112 §2.2 robustness: some clients send
    /// a stray CRLF after a POST body). More than this is treated as garbage (400).
    public static let maxLeadingEmptyLines = 16

    public let limits: HTTPParserLimits

    private enum State: Sendable {
        case requestLine
        case headerLines
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case failed(HTTPParseError)
    }

    private var state: State = .requestLine
    /// Bytes of the current incomplete line (from the start of the caller's buffer) already
    /// searched for LF.
    private var scanned = 0
    /// Offsets of the first two spaces of the request line being scanned, -1 when not seen yet;
    /// tracked during the scan so early limit checks need no rescan.
    private var firstSpace = -1
    private var secondSpace = -1
    private var leadingEmptyLines = 0

    // The head under construction.
    private var method: HTTPMethod = .get
    private var target = ""
    private var versionMinor = 1
    private var headers = HTTPHeaders()
    private var headerBytes = 0

    // The body under construction.
    private var pendingHead: HTTPRequestHead?
    private var body: [UInt8] = []
    private var trailerBytes = 0
    private var trailerCount = 0

    public init(limits: HTTPParserLimits = HTTPParserLimits()) {
        self.limits = limits
    }

    /// Whether the parser is between requests (nothing of a next request consumed yet). A server
    /// can use this to tell an idle keep-alive connection from one stuck mid-request.
    public var isIdle: Bool {
        if case .requestLine = state { return scanned == 0 && leadingEmptyLines == 0 }
        return false
    }

    /// Parses from the start of `bytes` (the caller's unread buffer) and returns how many bytes it
    /// consumed. The caller drops `consumed` bytes and calls again with what remains plus new data.
    /// `consumed` never exceeds `bytes.count`.
    public mutating func parse(_ bytes: UnsafeRawBufferPointer) -> (consumed: Int, result: HTTPParseResult) {
        if case .failed(let error) = state { return (0, .failed(error)) }
        // A caller that broke the contract (passed fewer bytes than last time) must not make us
        // index past the buffer: forget the scan progress and rescan the line.
        if scanned > bytes.count {
            scanned = 0
            firstSpace = -1
            secondSpace = -1
        }
        var pos = 0
        while true {
            switch state {
            case .failed(let error):
                return (0, .failed(error))

            case .requestLine:
                guard let line = scanRequestLine(bytes, from: pos) else {
                    if let error = requestLineLimitError(extent: partialExtent(bytes, from: pos)) {
                        return fail(error)
                    }
                    return (pos, .needMore)
                }
                if line.end == pos {
                    leadingEmptyLines += 1
                    if leadingEmptyLines > Self.maxLeadingEmptyLines {
                        return fail(400, "too many empty lines before the request line")
                    }
                    resetLineScan()
                    pos = line.next
                    continue
                }
                if let error = processRequestLine(bytes, start: pos, end: line.end) { return fail(error) }
                resetLineScan()
                pos = line.next
                state = .headerLines

            case .headerLines:
                guard let line = findLine(bytes, from: pos) else {
                    if headerBytes + partialExtent(bytes, from: pos) > limits.maxHeaderBytes {
                        return fail(431, "header block too large")
                    }
                    return (pos, .needMore)
                }
                pos = line.next
                if line.end == line.start {
                    switch finishHead() {
                    case .failure(let error):
                        return fail(error)
                    case .success(let head):
                        if !head.hasBody {
                            resetForNextRequest()
                            return (pos, .request(HTTPRequest(head: head, body: [])))
                        }
                        pendingHead = head
                        if head.isChunked {
                            state = .chunkSize
                        } else {
                            let length = head.contentLength ?? 0
                            // Reserve what was announced, but not more than a modest amount up
                            // front: a client announcing 1 MiB and sending nothing should not
                            // cost 1 MiB per connection.
                            body.reserveCapacity(min(length, 64 * 1024))
                            state = .body(remaining: length)
                        }
                        return (pos, .head(head))
                    }
                }
                if let error = processHeaderLine(bytes, start: line.start, end: line.end) { return fail(error) }

            case .body(let remaining):
                let n = min(remaining, bytes.count - pos)
                if n > 0 {
                    body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + n)]))
                    pos += n
                }
                if remaining - n == 0 { return completeRequest(consumed: pos) }
                state = .body(remaining: remaining - n)
                return (pos, .needMore)

            case .chunkSize:
                guard let line = findLine(bytes, from: pos) else {
                    if partialExtent(bytes, from: pos) > Self.maxChunkLineBytes {
                        return fail(400, "chunk size line too long")
                    }
                    return (pos, .needMore)
                }
                pos = line.next
                switch parseChunkSize(bytes, start: line.start, end: line.end) {
                case .failure(let error):
                    return fail(error)
                case .success(let size):
                    state = size == 0 ? .trailers : .chunkData(remaining: size)
                }

            case .chunkData(let remaining):
                let n = min(remaining, bytes.count - pos)
                if n > 0 {
                    body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + n)]))
                    pos += n
                }
                if remaining - n == 0 {
                    state = .chunkDataEnd
                    continue
                }
                state = .chunkData(remaining: remaining - n)
                return (pos, .needMore)

            case .chunkDataEnd:
                // The chunk data must be followed by exactly CRLF (or LF).
                guard let line = findLine(bytes, from: pos) else {
                    if partialExtent(bytes, from: pos) > 0 { return fail(400, "chunk data not followed by CRLF") }
                    return (pos, .needMore)
                }
                if line.end != line.start { return fail(400, "chunk data not followed by CRLF") }
                pos = line.next
                state = .chunkSize

            case .trailers:
                // Trailer fields are skipped (we never act on them), but they are still bounded
                // so a client cannot stream an endless trailer section.
                guard let line = findLine(bytes, from: pos) else {
                    if trailerBytes + partialExtent(bytes, from: pos) > limits.maxHeaderBytes {
                        return fail(431, "trailer section too large")
                    }
                    return (pos, .needMore)
                }
                pos = line.next
                if line.end == line.start { return completeRequest(consumed: pos) }
                trailerBytes += line.end - line.start
                trailerCount += 1
                if trailerBytes > limits.maxHeaderBytes { return fail(431, "trailer section too large") }
                if trailerCount > limits.maxHeaderCount { return fail(431, "too many trailer fields") }
            }
        }
    }

    // MARK: - Line scanning

    /// Finds the LF ending the line that starts at `start`, resuming where the previous call
    /// stopped. Returns the content range end (LF and a preceding CR excluded) and the offset
    /// after the LF; nil when the line is incomplete.
    private mutating func findLine(_ bytes: UnsafeRawBufferPointer, from start: Int) -> (start: Int, end: Int, next: Int)? {
        var i = start + scanned
        while i < bytes.count {
            if bytes[i] == LF {
                scanned = 0
                let end = (i > start && bytes[i - 1] == CR) ? i - 1 : i
                return (start, end, i + 1)
            }
            i += 1
        }
        scanned = bytes.count - start
        return nil
    }

    /// `findLine` for the request line, additionally recording the first two spaces.
    private mutating func scanRequestLine(_ bytes: UnsafeRawBufferPointer, from start: Int) -> (end: Int, next: Int)? {
        var i = start + scanned
        while i < bytes.count {
            let byte = bytes[i]
            if byte == LF {
                scanned = 0
                let end = (i > start && bytes[i - 1] == CR) ? i - 1 : i
                return (end, i + 1)
            }
            if byte == SP {
                if firstSpace < 0 {
                    firstSpace = i - start
                } else if secondSpace < 0 {
                    secondSpace = i - start
                }
            }
            i += 1
        }
        scanned = bytes.count - start
        return nil
    }

    /// Length of the incomplete line starting at `start`, not counting a final CR (it may be the
    /// first half of the line terminator, which a complete line does not count either). This
    /// makes the early checks exact prefixes of the checks on the complete line.
    private func partialExtent(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        let length = bytes.count - start
        if length > 0 && bytes[bytes.count - 1] == CR { return length - 1 }
        return length
    }

    private mutating func resetLineScan() {
        scanned = 0
        firstSpace = -1
        secondSpace = -1
    }

    // MARK: - Request line

    /// Length checks shared by the incomplete and the complete request line. `extent` is the
    /// line's content length so far; every check is monotonic in it.
    private func requestLineLimitError(extent: Int) -> HTTPParseError? {
        let methodLength = firstSpace >= 0 ? firstSpace : extent
        if methodLength > Self.maxMethodBytes { return HTTPParseError(status: 400, message: "malformed request line") }
        guard firstSpace >= 0 else { return nil }
        let targetLength = (secondSpace >= 0 ? secondSpace : extent) - firstSpace - 1
        if targetLength > limits.maxURIBytes { return HTTPParseError(status: 414, message: "request-target too long") }
        guard secondSpace >= 0 else { return nil }
        // "HTTP/1.1" is 8 bytes; anything longer can never be a valid version.
        if extent - secondSpace - 1 > 8 { return HTTPParseError(status: 400, message: "malformed HTTP version") }
        return nil
    }

    private mutating func processRequestLine(_ bytes: UnsafeRawBufferPointer, start: Int, end: Int) -> HTTPParseError? {
        if let error = requestLineLimitError(extent: end - start) { return error }
        let bad = HTTPParseError(status: 400, message: "malformed request line")
        guard firstSpace > 0, secondSpace > firstSpace + 1, start + secondSpace < end else { return bad }
        let methodBytes = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + firstSpace)])
        let targetBytes = UnsafeRawBufferPointer(rebasing: bytes[(start + firstSpace + 1)..<(start + secondSpace)])
        let versionBytes = UnsafeRawBufferPointer(rebasing: bytes[(start + secondSpace + 1)..<end])
        guard methodBytes.allSatisfy(isTokenChar) else { return bad }
        // Visible ASCII only: no controls, no spaces, no raw non-ASCII (RFC 3986 needs them
        // percent-encoded); tolerating them invites request smuggling via lenient proxies.
        guard targetBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return bad }

        // HTTP-version = "HTTP/" DIGIT "." DIGIT; a bare "HTTP/2" or "HTTP/3" (as sent by some
        // tools) is recognised as a version we do not speak (505) rather than garbage.
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        guard versionBytes.count == 8 || versionBytes.count == 6,
            versionBytes.starts(with: "HTTP/".utf8)
        else { return bad }
        let major = versionBytes[5]
        guard digits.contains(major) else { return bad }
        var minor: UInt8? = nil
        if versionBytes.count == 8 {
            guard versionBytes[6] == UInt8(ascii: "."), digits.contains(versionBytes[7]) else { return bad }
            minor = versionBytes[7]
        }
        guard major == UInt8(ascii: "1") else {
            return HTTPParseError(status: 505, message: "HTTP version not supported")
        }
        guard let minor else { return bad }
        // Any HTTP/1.x with x >= 1 is handled as HTTP/1.1 (RFC 9110 §6.2).
        versionMinor = minor == UInt8(ascii: "0") ? 0 : 1
        method = HTTPMethod(String(decoding: methodBytes, as: UTF8.self))
        target = String(decoding: targetBytes, as: UTF8.self)
        return nil
    }

    // MARK: - Header lines

    private mutating func processHeaderLine(_ bytes: UnsafeRawBufferPointer, start: Int, end: Int) -> HTTPParseError? {
        // Size first: the early check on the incomplete line is the same predicate.
        headerBytes += end - start
        if headerBytes > limits.maxHeaderBytes { return HTTPParseError(status: 431, message: "header block too large") }
        if headers.count >= limits.maxHeaderCount { return HTTPParseError(status: 431, message: "too many header fields") }
        let first = bytes[start]
        if first == SP || first == HTAB {
            // obs-fold (RFC 9112 §5.2): a server may reject it, and folding is a classic
            // smuggling vector, so we do.
            return HTTPParseError(status: 400, message: "obsolete line folding not allowed")
        }
        var colon = start
        while colon < end && bytes[colon] != UInt8(ascii: ":") { colon += 1 }
        guard colon < end, colon > start else { return HTTPParseError(status: 400, message: "malformed header line") }
        let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[start..<colon])
        // Whitespace before the colon is not a token char, so this also enforces RFC 9112 §5.1's
        // "no whitespace between field name and colon" (400).
        guard nameBytes.allSatisfy(isTokenChar) else {
            return HTTPParseError(status: 400, message: "malformed header name")
        }
        let valueBytes = trimOWS(UnsafeRawBufferPointer(rebasing: bytes[(colon + 1)..<end]))
        // Field values may hold HTAB, visible ASCII and obs-text; CR, NUL and other controls are
        // refused rather than passed on to code that might echo them into a response.
        for byte in valueBytes where byte != HTAB && (byte < 0x20 || byte == 0x7F) {
            return HTTPParseError(status: 400, message: "invalid character in header value")
        }
        headers.add(
            name: String(decoding: nameBytes, as: UTF8.self),
            value: String(decoding: UnsafeRawBufferPointer(rebasing: valueBytes), as: UTF8.self))
        return nil
    }

    /// Derives framing and connection facts from the complete head (RFC 9112 §6).
    private func finishHead() -> Result<HTTPRequestHead, HTTPParseError> {
        var isChunked = false
        var contentLength: Int? = nil
        let hasTransferEncoding = headers.contains("Transfer-Encoding")
        let lengthValues = headers.values("Content-Length")

        if hasTransferEncoding {
            // Both framings at once is the request-smuggling classic (RFC 9112 §6.1): refuse.
            if !lengthValues.isEmpty {
                return .failure(HTTPParseError(status: 400, message: "both Transfer-Encoding and Content-Length"))
            }
            if versionMinor == 0 {
                return .failure(HTTPParseError(status: 400, message: "Transfer-Encoding in an HTTP/1.0 request"))
            }
            let codings = headers.lowercasedTokens("Transfer-Encoding")
            if codings.isEmpty { return .failure(HTTPParseError(status: 400, message: "empty Transfer-Encoding")) }
            if codings.contains(where: { $0 != "chunked" }) {
                return .failure(HTTPParseError(status: 501, message: "unsupported transfer coding"))
            }
            if codings.count > 1 {
                return .failure(HTTPParseError(status: 400, message: "chunked applied more than once"))
            }
            isChunked = true
        } else if !lengthValues.isEmpty {
            switch Self.parseContentLength(lengthValues) {
            case .failure(let error): return .failure(error)
            case .success(let length):
                if length > limits.maxBodyBytes {
                    return .failure(HTTPParseError(status: 413, message: "request body too large"))
                }
                contentLength = length
            }
        }

        // These methods are defined to carry content; without framing we cannot tell an empty
        // body from a missing one (RFC 9112 §6.3 item 7 would mean "no body"), so ask for a length.
        if !isChunked && contentLength == nil && (method == .post || method == .put || method == .patch) {
            return .failure(HTTPParseError(status: 411, message: "Content-Length required"))
        }

        let connection = headers.lowercasedTokens("Connection")
        let keepAlive: Bool
        if versionMinor >= 1 {
            keepAlive = !connection.contains("close")
        } else {
            keepAlive = connection.contains("keep-alive") && !connection.contains("close")
        }
        let hasBody = isChunked || (contentLength ?? 0) > 0
        let expectsContinue = hasBody && headers.lowercasedTokens("Expect").contains("100-continue")
        let (path, query) = Self.splitTarget(target)
        return .success(
            HTTPRequestHead(
                method: method, target: target, path: path, query: query, versionMinor: versionMinor,
                headers: headers, keepAlive: keepAlive, expectsContinue: expectsContinue,
                contentLength: contentLength, isChunked: isChunked))
    }

    /// Content-Length = 1*DIGIT; repeated fields or list elements are accepted only when they
    /// all agree (RFC 9112 §6.3 item 5). A syntactically valid but absurdly large value is 413,
    /// not 400: it is a size problem, not a syntax one.
    static func parseContentLength(_ values: [String]) -> Result<Int, HTTPParseError> {
        let invalid = HTTPParseError(status: 400, message: "invalid Content-Length")
        var result: Int? = nil
        for value in values {
            for element in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                let digits = trimOWS(element)
                guard !digits.isEmpty else { return .failure(invalid) }
                var parsed = 0
                for byte in digits {
                    guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return .failure(invalid) }
                    let (times10, o1) = parsed.multipliedReportingOverflow(by: 10)
                    let (sum, o2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                    // Saturate: every overflowing value is "too large", and still compares equal
                    // to itself for the duplicate check.
                    parsed = (o1 || o2 || parsed == Int.max) ? Int.max : sum
                }
                if let result, result != parsed {
                    return .failure(HTTPParseError(status: 400, message: "conflicting Content-Length values"))
                }
                result = parsed
            }
        }
        guard let result else { return .failure(invalid) }
        return .success(result)
    }

    /// Splits a request-target into path and query. For absolute-form targets the scheme and
    /// authority are dropped so routing sees the same path as for origin-form.
    static func splitTarget(_ target: String) -> (path: String, query: String?) {
        var bytes = Substring(target).utf8[...]
        for scheme in ["http://", "https://"] where bytes.count >= scheme.utf8.count {
            let prefix = bytes.prefix(scheme.utf8.count)
            if prefix.elementsEqual(scheme.utf8, by: { asciiLowercase($0) == $1 }) {
                let afterScheme = bytes.dropFirst(scheme.utf8.count)
                let authorityEnd = afterScheme.firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") })
                bytes = afterScheme[(authorityEnd ?? afterScheme.endIndex)...]
                if bytes.first != UInt8(ascii: "/") {
                    let query = bytes.first == UInt8(ascii: "?") ? String(Substring(bytes.dropFirst())) : nil
                    return ("/", query)
                }
                break
            }
        }
        if let question = bytes.firstIndex(of: UInt8(ascii: "?")) {
            let path = String(Substring(bytes[..<question]))
            let query = String(Substring(bytes[bytes.index(after: question)...]))
            return (path, query)
        }
        return (String(Substring(bytes)), nil)
    }

    // MARK: - Chunked body

    /// chunk-size [ chunk-ext ]: hex digits, optional whitespace, then optionally ";" and
    /// extensions, which we ignore (no extension is defined that we would act on).
    private func parseChunkSize(_ bytes: UnsafeRawBufferPointer, start: Int, end: Int) -> Result<Int, HTTPParseError> {
        if end - start > Self.maxChunkLineBytes {
            return .failure(HTTPParseError(status: 400, message: "chunk size line too long"))
        }
        let invalid = HTTPParseError(status: 400, message: "invalid chunk size")
        var i = start
        var size = 0
        var tooLarge = false
        while i < end, let digit = hexValue(bytes[i]) {
            if !tooLarge {
                let (times16, o1) = size.multipliedReportingOverflow(by: 16)
                let (sum, o2) = times16.addingReportingOverflow(digit)
                if o1 || o2 || sum > limits.maxBodyBytes { tooLarge = true } else { size = sum }
            }
            i += 1
        }
        guard i > start else { return .failure(invalid) }
        while i < end && (bytes[i] == SP || bytes[i] == HTAB) { i += 1 }
        if i < end && bytes[i] != UInt8(ascii: ";") { return .failure(invalid) }
        // Checked after the syntax so a malformed line is 400 whatever its digits say.
        if tooLarge || size > limits.maxBodyBytes - body.count {
            return .failure(HTTPParseError(status: 413, message: "request body too large"))
        }
        return .success(size)
    }

    private func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A")) + 10
        default: return nil
        }
    }

    // MARK: - Completion and failure

    private mutating func completeRequest(consumed: Int) -> (consumed: Int, result: HTTPParseResult) {
        guard let head = pendingHead else {
            // Unreachable: body states are only entered after the head was stored.
            return fail(400, "internal parser state error")
        }
        let request = HTTPRequest(head: head, body: body)
        resetForNextRequest()
        return (consumed, .request(request))
    }

    private mutating func resetForNextRequest() {
        state = .requestLine
        resetLineScan()
        leadingEmptyLines = 0
        method = .get
        target = ""
        versionMinor = 1
        headers = HTTPHeaders()
        headerBytes = 0
        pendingHead = nil
        body = []
        trailerBytes = 0
        trailerCount = 0
    }

    private mutating func fail(_ error: HTTPParseError) -> (consumed: Int, result: HTTPParseResult) {
        resetForNextRequest()  // release buffers; the state below makes the parser stay failed
        state = .failed(error)
        return (0, .failed(error))
    }

    private mutating func fail(_ status: Int, _ message: String) -> (consumed: Int, result: HTTPParseResult) {
        fail(HTTPParseError(status: status, message: message))
    }
}
