// Value types shared by the HTTP/1.1 request parser and the response encoders.
//
// Everything under Sources/HTTP/Codec imports only the Swift standard library: the fuzzer
// (scripts/fuzz.sh) compiles these files standalone with swiftc, without SwiftPM or Foundation.

/// Resource limits the request parser enforces while bytes arrive, so a hostile or broken
/// client is refused before it can make the server buffer an unbounded amount of data.
public struct HTTPParserLimits: Sendable, Equatable {
    /// Longest request-target accepted; longer targets fail with 414 as soon as they exceed it,
    /// even before the request line is complete.
    public var maxURIBytes: Int = 8192
    /// Largest header block, counted as the sum of the header field lines *without* their line
    /// terminators (so CRLF and bare-LF clients get the same budget). Exceeding it fails with 431,
    /// as soon as it is exceeded. Chunked trailers get a separate budget of the same size.
    public var maxHeaderBytes: Int = 16384
    /// Largest request body. A larger Content-Length fails with 413 when the head completes; a
    /// chunked body fails with 413 as soon as a chunk size would take it over the limit.
    public var maxBodyBytes: Int = 1_048_576
    /// Most header field lines accepted (431 beyond that); also applies to chunked trailers.
    public var maxHeaderCount: Int = 100

    public init(
        maxURIBytes: Int = 8192,
        maxHeaderBytes: Int = 16384,
        maxBodyBytes: Int = 1_048_576,
        maxHeaderCount: Int = 100
    ) {
        self.maxURIBytes = maxURIBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderCount = maxHeaderCount
    }
}

/// A request method. The common methods get their own cases so routing can `switch` on them;
/// any other syntactically valid method token is kept verbatim in `.other`.
public enum HTTPMethod: Equatable, Hashable, Sendable {
    case get, head, post, put, delete, options, patch
    case other(String)

    /// Maps a method token to its case. Methods are case-sensitive (RFC 9110 §9.1), so "get" is
    /// `.other("get")`, not `.get`.
    public init(_ name: String) {
        switch name {
        case "GET": self = .get
        case "HEAD": self = .head
        case "POST": self = .post
        case "PUT": self = .put
        case "DELETE": self = .delete
        case "OPTIONS": self = .options
        case "PATCH": self = .patch
        default: self = .other(name)
        }
    }

    /// The method token as it appears on the wire.
    public var name: String {
        switch self {
        case .get: return "GET"
        case .head: return "HEAD"
        case .post: return "POST"
        case .put: return "PUT"
        case .delete: return "DELETE"
        case .options: return "OPTIONS"
        case .patch: return "PATCH"
        case .other(let name): return name
        }
    }
}

/// An ordered list of header fields. Order and duplicates are preserved (some fields, like
/// Set-Cookie, must not be merged); lookups compare names ASCII-case-insensitively.
public struct HTTPHeaders: Sendable, Sequence, Equatable, ExpressibleByDictionaryLiteral {
    public typealias Element = (name: String, value: String)

    var storage: [(name: String, value: String)]

    public init() { storage = [] }

    public init(_ pairs: [(String, String)]) {
        storage = pairs.map { (name: $0.0, value: $0.1) }
    }

    /// Dictionary-literal syntax keeps the literal's order (it is passed as an array of pairs).
    public init(dictionaryLiteral elements: (String, String)...) {
        storage = elements.map { (name: $0.0, value: $0.1) }
    }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        guard lhs.storage.count == rhs.storage.count else { return false }
        for (l, r) in zip(lhs.storage, rhs.storage) where l.name != r.name || l.value != r.value {
            return false
        }
        return true
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        storage.makeIterator()
    }

    /// Number of fields, duplicates included.
    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }

    /// The value of the first field called `name`. Setting replaces all fields of that name with
    /// one field (keeping the first one's position); setting `nil` removes them.
    public subscript(name: String) -> String? {
        get {
            for field in storage where asciiCaseInsensitiveEquals(field.name, name) {
                return field.value
            }
            return nil
        }
        set {
            if let newValue {
                replaceOrAdd(name: name, value: newValue)
            } else {
                remove(name)
            }
        }
    }

    /// Values of every field called `name`, in order.
    public func values(_ name: String) -> [String] {
        storage.compactMap { asciiCaseInsensitiveEquals($0.name, name) ? $0.value : nil }
    }

    /// Whether at least one field is called `name`.
    public func contains(_ name: String) -> Bool {
        storage.contains { asciiCaseInsensitiveEquals($0.name, name) }
    }

    /// Appends a field, keeping any existing fields of the same name.
    public mutating func add(name: String, value: String) {
        storage.append((name: name, value: value))
    }

    /// Unlabelled spelling of `add(name:value:)`.
    public mutating func add(_ name: String, _ value: String) {
        add(name: name, value: value)
    }

    /// Replaces the first field called `name` and removes the others, or appends the field if
    /// there is none.
    public mutating func replaceOrAdd(name: String, value: String) {
        if let first = storage.firstIndex(where: { asciiCaseInsensitiveEquals($0.name, name) }) {
            storage[first].value = value
            var index = storage.count - 1
            while index > first {
                if asciiCaseInsensitiveEquals(storage[index].name, name) { storage.remove(at: index) }
                index -= 1
            }
        } else {
            storage.append((name: name, value: value))
        }
    }

    /// Unlabelled spelling of `replaceOrAdd(name:value:)`.
    public mutating func replaceOrAdd(_ name: String, _ value: String) {
        replaceOrAdd(name: name, value: value)
    }

    /// Removes every field called `name`.
    public mutating func remove(_ name: String) {
        storage.removeAll { asciiCaseInsensitiveEquals($0.name, name) }
    }

    /// The comma-separated elements of every field called `name`, trimmed of optional whitespace
    /// and lowercased; empty elements are dropped (RFC 9110 §5.6.1 list syntax).
    /// Used for Connection and Transfer-Encoding, whose tokens are case-insensitive.
    public func lowercasedTokens(_ name: String) -> [String] {
        var tokens: [String] = []
        for value in values(name) {
            for part in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true) {
                let trimmed = trimOWS(part)
                if trimmed.isEmpty { continue }
                tokens.append(String(decoding: trimmed.map(asciiLowercase), as: UTF8.self))
            }
        }
        return tokens
    }
}

/// A parsed request line and header block, plus the framing facts derived from them.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: HTTPMethod
    /// The request-target exactly as received (origin-form, absolute-form, authority-form or "*").
    public var target: String
    /// The path part of the target, without the query. For absolute-form targets
    /// ("http://host/p?q") this is the path after the authority ("/p", or "/" if there is none).
    public var path: String
    /// Everything after the first "?", or nil when the target has no "?".
    public var query: String?
    /// 0 for HTTP/1.0, 1 for HTTP/1.1 (and for any later HTTP/1.x, which must be treated as 1.1).
    public var versionMinor: Int
    public var headers: HTTPHeaders
    /// Whether the connection may be reused after this request: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    public var keepAlive: Bool
    /// True when the client sent `Expect: 100-continue` *and* a body follows; the server should
    /// then answer the `.head` result with "100 Continue" (or a final status) before the body.
    public var expectsContinue: Bool
    /// The declared Content-Length, nil when absent (and always nil for chunked requests).
    public var contentLength: Int?
    /// Whether the body uses `Transfer-Encoding: chunked`.
    public var isChunked: Bool

    public init(
        method: HTTPMethod, target: String, path: String, query: String?, versionMinor: Int,
        headers: HTTPHeaders, keepAlive: Bool, expectsContinue: Bool, contentLength: Int?, isChunked: Bool
    ) {
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.versionMinor = versionMinor
        self.headers = headers
        self.keepAlive = keepAlive
        self.expectsContinue = expectsContinue
        self.contentLength = contentLength
        self.isChunked = isChunked
    }

    /// Whether a body follows the head on the wire (so the parser emits `.head` first).
    public var hasBody: Bool { isChunked || (contentLength ?? 0) > 0 }
}

/// A complete request: head plus the fully received (de-chunked) body.
public struct HTTPRequest: Sendable, Equatable {
    public var head: HTTPRequestHead
    public var body: [UInt8]

    public init(head: HTTPRequestHead, body: [UInt8]) {
        self.head = head
        self.body = body
    }
}

/// Why a request was refused, with the status code the server should answer with before it
/// closes the connection (400, 411, 413, 414, 431, 501 or 505).
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: Int
    public let message: String

    public init(status: Int, message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "HTTP \(status): \(message)" }
}

/// One step of the incremental parser. A single `parse` call yields at most one of these, so a
/// caller with pipelined data keeps calling `parse` until it gets `.needMore`.
public enum HTTPParseResult: Sendable, Equatable {
    /// The buffer holds no complete request (or body) yet; call again with more data.
    case needMore
    /// The head is complete and a body is still to come. Emitted once per request that has a
    /// body, whether or not body bytes are already buffered, so the server can send
    /// "100 Continue" or refuse early. Never emitted for requests without a body.
    case head(HTTPRequestHead)
    /// A complete request. The parser is ready for the next (pipelined) request.
    case request(HTTPRequest)
    /// The request is malformed or over a limit. The parser stays failed: the server should send
    /// `status` and close, because the framing of anything that follows is unknown.
    case failed(HTTPParseError)
}

// MARK: - ASCII helpers (no Foundation)

func asciiLowercase(_ byte: UInt8) -> UInt8 {
    (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
}

/// Header names are ASCII tokens, so comparing bytes with ASCII case folding is exact (and
/// avoids Unicode-aware lowercasing, which is both slower and wrong for protocol tokens).
func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    let a = a.utf8, b = b.utf8
    guard a.count == b.count else { return false }
    for (x, y) in zip(a, b) where asciiLowercase(x) != asciiLowercase(y) {
        return false
    }
    return true
}

/// Strips optional whitespace (SP / HTAB) from both ends.
func trimOWS<C: BidirectionalCollection>(_ bytes: C) -> C.SubSequence where C.Element == UInt8 {
    var slice = bytes[...]
    while let first = slice.first, first == 0x20 || first == 0x09 { slice = slice.dropFirst() }
    while let last = slice.last, last == 0x20 || last == 0x09 { slice = slice.dropLast() }
    return slice
}

/// tchar from RFC 9110 §5.6.2: the characters allowed in methods, header names and codings.
func isTokenChar(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
        UInt8(ascii: "A")...UInt8(ascii: "Z"):
        return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
        UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
        UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}
