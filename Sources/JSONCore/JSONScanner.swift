/// A validating pull reader over JSON bytes: walk objects and arrays, read the members you need,
/// and skip (but still fully validate) the rest, without building a `JSONValue` tree.
/// This is what the streaming decoders use per chunk; `JSONParser` is built on it.
///
/// The scanner borrows `bytes`: it must not outlive the buffer it was created with.
public struct JSONScanner {
    @usableFromInline let bytes: UnsafeRawBufferPointer
    /// Current read position (byte offset into the input).
    public internal(set) var offset: Int = 0
    @usableFromInline var depth: Int = 0
    @usableFromInline let maxDepth: Int
    /// True right after `{` or `[`: the next member needs no comma before it.
    @usableFromInline var atContainerStart = false

    public init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 64) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    /// What the next value is, judged from its first byte.
    public enum Kind: Sendable, Equatable {
        case object, array, string, number, bool, null
    }

    // MARK: - Low-level helpers

    @inline(__always)
    mutating func skipWhitespace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case 0x20, 0x09, 0x0A, 0x0D: offset += 1
            default: return
            }
        }
    }

    func fail(_ kind: JSONError.Kind, _ message: String, at position: Int? = nil) -> JSONError {
        JSONError(kind, message, at: position ?? offset)
    }

    func unexpected() -> JSONError {
        guard offset < bytes.count else { return fail(.unexpectedEnd, "unexpected end of JSON") }
        let b = bytes[offset]
        let shown = b >= 0x20 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : "0x\(String(b, radix: 16))"
        return fail(.unexpectedByte, "unexpected byte \(shown)")
    }

    @inline(__always)
    mutating func expect(_ byte: UInt8) throws(JSONError) {
        skipWhitespace()
        guard offset < bytes.count, bytes[offset] == byte else { throw unexpected() }
        offset += 1
    }

    // MARK: - Structure

    /// Peeks at the next value without consuming it.
    public mutating func nextKind() throws(JSONError) -> Kind {
        skipWhitespace()
        guard offset < bytes.count else { throw fail(.unexpectedEnd, "unexpected end of JSON") }
        switch bytes[offset] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: throw unexpected()
        }
    }

    /// Consumes `{`.
    public mutating func beginObject() throws(JSONError) {
        skipWhitespace()
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: "{") else {
            if offset < bytes.count { throw fail(.typeMismatch, "expected an object") }
            throw unexpected()
        }
        try enter()
    }

    /// Consumes `[`.
    public mutating func beginArray() throws(JSONError) {
        skipWhitespace()
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: "[") else {
            if offset < bytes.count { throw fail(.typeMismatch, "expected an array") }
            throw unexpected()
        }
        try enter()
    }

    @inline(__always)
    mutating func enter() throws(JSONError) {
        depth += 1
        guard depth <= maxDepth else { throw fail(.tooDeep, "nesting deeper than \(maxDepth)") }
        offset += 1
        atContainerStart = true
    }

    /// Reads the next member name of the current object and its `:`; nil (having consumed `}`)
    /// when the object ends. Call the matching read or skip for the member's value next.
    public mutating func nextKey() throws(JSONError) -> JSONKey? {
        skipWhitespace()
        guard offset < bytes.count else { throw unexpected() }
        let first = atContainerStart
        atContainerStart = false
        if bytes[offset] == UInt8(ascii: "}") {
            offset += 1
            depth -= 1
            return nil
        }
        if !first {
            guard bytes[offset] == UInt8(ascii: ",") else { throw unexpected() }
            offset += 1
            skipWhitespace()
        }
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else {
            throw offset < bytes.count ? fail(.unexpectedByte, "expected a member name") : unexpected()
        }
        let span = try scanString()
        // Provider payloads put the colon right after the name; whitespace takes the full path.
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ":") {
            offset += 1
        } else {
            try expect(UInt8(ascii: ":"))
        }
        return JSONKey(bytes: UnsafeRawBufferPointer(rebasing: bytes[span.start..<span.end]), hasEscapes: span.hasEscapes)
    }

    /// True when the current array has another element (positioned at it); false, having
    /// consumed `]`, when it ends.
    public mutating func nextElement() throws(JSONError) -> Bool {
        skipWhitespace()
        guard offset < bytes.count else { throw unexpected() }
        let first = atContainerStart
        atContainerStart = false
        if bytes[offset] == UInt8(ascii: "]") {
            offset += 1
            depth -= 1
            return false
        }
        if !first {
            guard bytes[offset] == UInt8(ascii: ",") else { throw unexpected() }
            offset += 1
            skipWhitespace()
            // A `]` right after `,` is a trailing comma: let the value reader reject it.
        }
        return true
    }

    /// Checks that nothing but whitespace follows the top-level value.
    public mutating func finish() throws(JSONError) {
        skipWhitespace()
        guard offset == bytes.count else { throw fail(.trailingData, "unexpected data after the JSON value") }
    }

    // MARK: - Scalars

    /// Reads a string value.
    public mutating func readString() throws(JSONError) -> String {
        skipWhitespace()
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else {
            if offset < bytes.count { throw fail(.typeMismatch, "expected a string") }
            throw unexpected()
        }
        let span = try scanString()
        return Self.decode(UnsafeRawBufferPointer(rebasing: bytes[span.start..<span.end]), hasEscapes: span.hasEscapes)
    }

    /// Reads a string or `null` (nil).
    public mutating func readStringOrNull() throws(JSONError) -> String? {
        if try nextKind() == .null { try readNull(); return nil }
        return try readString()
    }

    /// Reads a number; exact `.int` when it is an integer that fits `Int64`.
    public mutating func readNumber() throws(JSONError) -> JSONValue {
        skipWhitespace()
        let start = offset
        let isInteger = try scanNumber()
        let digits = UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
        if isInteger, let i = Self.integer(digits) { return .int(i) }
        guard let d = Double(String(decoding: digits, as: UTF8.self)) else {
            throw fail(.invalidNumber, "invalid number", at: start)
        }
        return .double(d)
    }

    /// Reads an integer number (a `typeMismatch` error for fractions or non-numbers).
    public mutating func readInt() throws(JSONError) -> Int64 {
        guard try nextKind() == .number else { throw fail(.typeMismatch, "expected an integer") }
        let start = offset
        guard case .int(let i) = try readNumber() else {
            throw fail(.typeMismatch, "expected an integer", at: start)
        }
        return i
    }

    /// Reads an integer or `null` (nil).
    public mutating func readIntOrNull() throws(JSONError) -> Int64? {
        if try nextKind() == .null { try readNull(); return nil }
        return try readInt()
    }

    public mutating func readBool() throws(JSONError) -> Bool {
        skipWhitespace()
        if try literal("true") { return true }
        if try literal("false") { return false }
        throw offset < bytes.count ? fail(.typeMismatch, "expected a boolean") : unexpected()
    }

    public mutating func readNull() throws(JSONError) {
        skipWhitespace()
        guard try literal("null") else {
            throw offset < bytes.count ? fail(.typeMismatch, "expected null") : unexpected()
        }
    }

    /// Consumes `word` if the input continues with it; throws if it starts like it but is cut.
    mutating func literal(_ word: StaticString) throws(JSONError) -> Bool {
        let n = word.utf8CodeUnitCount
        let w = word.utf8Start
        guard offset < bytes.count, bytes[offset] == w[0] else { return false }
        for k in 1..<n {
            guard offset + k < bytes.count else {
                throw fail(.unexpectedEnd, "unexpected end of JSON", at: bytes.count)
            }
            guard bytes[offset + k] == w[k] else { throw fail(.unexpectedByte, "invalid literal", at: offset + k) }
        }
        offset += n
        return true
    }

    // MARK: - Skipping

    /// Skips the next value, validating it completely.
    public mutating func skipValue() throws(JSONError) {
        // Dispatches on the first byte itself (what `nextKind` and `beginObject` would check
        // again): most of a provider chunk is skipped, so this runs for nearly every member.
        skipWhitespace()
        guard offset < bytes.count else { throw fail(.unexpectedEnd, "unexpected end of JSON") }
        switch bytes[offset] {
        case UInt8(ascii: "\""):
            _ = try scanString()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            _ = try scanNumber()
        case UInt8(ascii: "{"):
            try enter()
            while try nextKey() != nil { try skipValue() }
        case UInt8(ascii: "["):
            try enter()
            while try nextElement() { try skipValue() }
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            _ = try readBool()
        case UInt8(ascii: "n"):
            try readNull()
        default:
            throw unexpected()
        }
    }

    /// Reads the next value as a tree (for small, rare payloads such as errors).
    public mutating func readValue() throws(JSONError) -> JSONValue {
        switch try nextKind() {
        case .object:
            try beginObject()
            var members: [(key: String, value: JSONValue)] = []
            while let key = try nextKey() {
                let name = key.string
                members.append((name, try readValue()))
            }
            return .object(members)
        case .array:
            try beginArray()
            var items: [JSONValue] = []
            while try nextElement() { items.append(try readValue()) }
            return .array(items)
        case .string: return .string(try readString())
        case .number: return try readNumber()
        case .bool: return .bool(try readBool())
        case .null:
            try readNull()
            return .null
        }
    }
}
