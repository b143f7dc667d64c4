extension JSONScanner {
    /// Byte range of a string's contents (between the quotes) in the input.
    struct StringSpan {
        var start: Int
        var end: Int
        var hasEscapes: Bool
    }

    /// Validates a string starting at its opening quote and moves past the closing quote.
    /// Escapes, surrogate pairs and raw UTF-8 are all checked here, so decoding can trust it.
    @inline(__always)
    mutating func scanString() throws(JSONError) -> StringSpan {
        offset += 1
        let start = offset
        var hasEscapes = false
        let n = bytes.count
        guard let base = bytes.baseAddress else { throw fail(.unexpectedEnd, "unterminated string", at: n) }
        while offset < n {
            // Most string bytes are plain ASCII: skip them a word at a time and land on the first
            // byte that needs a look (quote, backslash, control byte or non-ASCII), which the
            // byte-wise checks below then judge exactly as before.
            while offset &+ 8 <= n {
                let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                let special = Self.specialStringBytes(word)
                if special != 0 {
                    offset &+= special.trailingZeroBitCount &>> 3
                    break
                }
                offset &+= 8
            }
            guard offset < n else { break }
            let b = bytes[offset]
            if b == UInt8(ascii: "\"") {
                let span = StringSpan(start: start, end: offset, hasEscapes: hasEscapes)
                offset += 1
                return span
            }
            if b == UInt8(ascii: "\\") {
                hasEscapes = true
                try scanEscape()
            } else if b < 0x20 {
                throw fail(.controlCharacter, "unescaped control character in string")
            } else if b < 0x80 {
                offset += 1
            } else {
                guard let len = UTF8Validation.sequenceLength(bytes, offset) else {
                    throw fail(.invalidUTF8, "invalid UTF-8 in string")
                }
                offset += len
            }
        }
        throw fail(.unexpectedEnd, "unterminated string", at: n)
    }

    /// High bit set in each byte of `word` (little-endian order) that is `"`, `\`, below 0x20 or
    /// above 0x7F. A flag can also appear in a byte above a flagged one (the borrow of the
    /// subtraction carries upward), never below one, so the lowest flag is always exact.
    @inline(__always)
    static func specialStringBytes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let isQuote = (quote &- ones) & ~quote
        let isBackslash = (backslash &- ones) & ~backslash
        let isControl = (word &- ones &* 0x20) & ~word
        return (isQuote | isBackslash | isControl | word) & (ones &* 0x80)
    }

    mutating func scanEscape() throws(JSONError) {
        guard offset + 1 < bytes.count else { throw fail(.unexpectedEnd, "unterminated string", at: bytes.count) }
        switch bytes[offset + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
             UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            offset += 2
        case UInt8(ascii: "u"):
            let escapeStart = offset
            let unit = try hex4(at: offset + 2)
            offset += 6
            if (0xD800...0xDBFF).contains(unit) {
                guard offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u") else {
                    throw fail(.invalidUnicodeEscape, "lone high surrogate", at: escapeStart)
                }
                let low = try hex4(at: offset + 2)
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw fail(.invalidUnicodeEscape, "high surrogate not followed by a low surrogate", at: escapeStart)
                }
                offset += 6
            } else if (0xDC00...0xDFFF).contains(unit) {
                throw fail(.invalidUnicodeEscape, "lone low surrogate", at: escapeStart)
            }
        default:
            throw fail(.invalidEscape, "invalid escape sequence", at: offset)
        }
    }

    func hex4(at position: Int) throws(JSONError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail(.unexpectedEnd, "truncated \\u escape", at: bytes.count) }
        var value: UInt32 = 0
        for k in 0..<4 {
            guard let digit = Self.hexValue(bytes[position + k]) else {
                throw fail(.invalidUnicodeEscape, "invalid hex digit in \\u escape", at: position + k)
            }
            value = value << 4 | digit
        }
        return value
    }

    @inline(__always)
    static func hexValue(_ b: UInt8) -> UInt32? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(b - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// Turns already-validated string contents into a `String`.
    static func decode(_ raw: UnsafeRawBufferPointer, hasEscapes: Bool) -> String {
        guard hasEscapes else { return String(decoding: raw, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            let b = raw[i]
            guard b == UInt8(ascii: "\\"), i + 1 < raw.count else {
                out.append(b)
                i += 1
                continue
            }
            let e = raw[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4Unchecked(raw, i)
                i += 4
                if (0xD800...0xDBFF).contains(scalar), i + 6 <= raw.count {
                    let low = hex4Unchecked(raw, i + 2)
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                }
                appendUTF8(scalar, to: &out)
            default: out.append(e)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hex4Unchecked(_ raw: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        var value: UInt32 = 0
        for k in 0..<4 where at + k < raw.count {
            value = value << 4 | (hexValue(raw[at + k]) ?? 0)
        }
        return value
    }

    static func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | scalar >> 6))
            out.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | scalar >> 12))
            out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        default:
            out.append(UInt8(0xF0 | scalar >> 18))
            out.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        }
    }
}

/// A member name inside the scanned buffer; compare it without allocating.
public struct JSONKey {
    /// Raw bytes between the quotes (still escaped when `hasEscapes`).
    public let bytes: UnsafeRawBufferPointer
    public let hasEscapes: Bool

    /// The decoded name.
    public var string: String { JSONScanner.decode(bytes, hasEscapes: hasEscapes) }

    /// Byte-wise comparison with a literal name; escaped names are decoded first. Both sides
    /// compare as UTF-8 code units (RFC 8259 §8.3), never with `String ==`, whose canonical
    /// equivalence made an escaped "\u212A" (Kelvin sign) equal "K" while the same name unescaped
    /// did not.
    ///
    /// Inlinable so that each call site in the decoders compiles to a length test against a
    /// constant plus a short byte compare: decoders test every member name against several
    /// literals, and an out-of-line call per test was a visible share of decoding time.
    @inlinable @inline(__always)
    public static func == (key: JSONKey, name: StaticString) -> Bool {
        let n = name.utf8CodeUnitCount
        if key.hasEscapes { return escapedEquals(key, name) }
        guard key.bytes.count == n else { return false }
        guard n > 0, let k = key.bytes.baseAddress else { return n == 0 }
        let p = UnsafeRawPointer(name.utf8Start)
        var i = 0
        while i < n {
            if k.load(fromByteOffset: i, as: UInt8.self) != p.load(fromByteOffset: i, as: UInt8.self) { return false }
            i += 1
        }
        return true
    }

    /// Rare path (a member name written with escapes): decode, then compare code units.
    @usableFromInline
    static func escapedEquals(_ key: JSONKey, _ name: StaticString) -> Bool {
        let p = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        var decoded = key.string
        return decoded.withUTF8 { $0.elementsEqual(p) }
    }
}

extension JSONScanner {
    /// Validates a number per RFC 8259 and moves past it; true when it has no fraction/exponent.
    mutating func scanNumber() throws(JSONError) -> Bool {
        let n = bytes.count
        let start = offset
        @inline(__always) func isDigit(_ i: Int) -> Bool {
            i < n && bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9")
        }
        if offset < n && bytes[offset] == UInt8(ascii: "-") { offset += 1 }
        guard isDigit(offset) else { throw fail(.invalidNumber, "invalid number", at: start) }
        if bytes[offset] == UInt8(ascii: "0") {
            offset += 1
        } else {
            while isDigit(offset) { offset += 1 }
        }
        var isInteger = true
        if offset < n && bytes[offset] == UInt8(ascii: ".") {
            isInteger = false
            offset += 1
            guard isDigit(offset) else { throw fail(.invalidNumber, "invalid number: digits expected after '.'", at: start) }
            while isDigit(offset) { offset += 1 }
        }
        if offset < n && (bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E")) {
            isInteger = false
            offset += 1
            if offset < n && (bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-")) { offset += 1 }
            guard isDigit(offset) else { throw fail(.invalidNumber, "invalid number: digits expected in exponent", at: start) }
            while isDigit(offset) { offset += 1 }
        }
        return isInteger
    }

    /// Exact value of a validated integer literal, or nil when it overflows `Int64`.
    static func integer(_ digits: UnsafeRawBufferPointer) -> Int64? {
        var i = 0
        let negative = digits.first == UInt8(ascii: "-")
        if negative { i = 1 }
        var value: Int64 = 0
        while i < digits.count {
            let d = Int64(digits[i] - UInt8(ascii: "0"))
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(d) : m.addingReportingOverflow(d)
            if o1 || o2 { return nil }
            value = s
            i += 1
        }
        return value
    }
}
