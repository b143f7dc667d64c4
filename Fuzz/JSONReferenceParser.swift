// The oracle for Fuzz/JSONParserFuzz.swift: a deliberately plain recursive-descent RFC 8259
// parser written from the grammar, sharing no code with Sources/JSONCore (UTF-8 is checked by the
// stdlib's decoder, escapes are decoded here). Slow and simple on purpose: if it and JSONCore
// disagree on an input, one of them is wrong, and this one is easy to check by eye.

/// Why the reference refused an input; only the verdict is compared, not the position.
enum ReferenceRefusal: Error {
    case syntax
    case tooDeep
}

struct ReferenceJSONParser {
    private let bytes: [UInt8]
    private var index = 0
    private let maxDepth: Int

    /// Same depth rule as JSONCore: the top-level container is depth 1, and opening a container
    /// deeper than `maxDepth` refuses the document.
    static func parse(_ bytes: [UInt8], maxDepth: Int) -> Result<JSONValue, ReferenceRefusal> {
        var parser = ReferenceJSONParser(bytes: bytes, maxDepth: maxDepth)
        do throws(ReferenceRefusal) {
            let value = try parser.value(depth: 0)
            parser.whitespace()
            guard parser.index == bytes.count else { return .failure(.syntax) }
            return .success(value)
        } catch {
            return .failure(error)
        }
    }

    private init(bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func whitespace() {
        while let b = current, b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { index += 1 }
    }

    private mutating func consume(_ b: UInt8) throws(ReferenceRefusal) {
        guard current == b else { throw .syntax }
        index += 1
    }

    private mutating func value(depth: Int) throws(ReferenceRefusal) -> JSONValue {
        whitespace()
        guard let b = current else { throw .syntax }
        switch b {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try word("true"); return .bool(true)
        case UInt8(ascii: "f"): try word("false"); return .bool(false)
        case UInt8(ascii: "n"): try word("null"); return .null
        default: return try number()
        }
    }

    private mutating func word(_ text: String) throws(ReferenceRefusal) {
        for b in text.utf8 { try consume(b) }
    }

    private mutating func object(depth: Int) throws(ReferenceRefusal) -> JSONValue {
        guard depth <= maxDepth else { throw .tooDeep }
        try consume(UInt8(ascii: "{"))
        var members: [(key: String, value: JSONValue)] = []
        whitespace()
        if current == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            whitespace()
            let key = try string()
            whitespace()
            try consume(UInt8(ascii: ":"))
            members.append((key, try value(depth: depth)))
            whitespace()
            if current == UInt8(ascii: ",") { index += 1; continue }
            try consume(UInt8(ascii: "}"))
            return .object(members)
        }
    }

    private mutating func array(depth: Int) throws(ReferenceRefusal) -> JSONValue {
        guard depth <= maxDepth else { throw .tooDeep }
        try consume(UInt8(ascii: "["))
        var items: [JSONValue] = []
        whitespace()
        if current == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            items.append(try value(depth: depth))
            whitespace()
            if current == UInt8(ascii: ",") { index += 1; continue }
            try consume(UInt8(ascii: "]"))
            return .array(items)
        }
    }

    private mutating func string() throws(ReferenceRefusal) -> String {
        try consume(UInt8(ascii: "\""))
        var scalars = String.UnicodeScalarView()
        var raw: [UInt8] = []
        /// Raw runs end at an ASCII quote or backslash, which can never sit inside a multi-byte
        /// sequence, so each run is a complete UTF-8 text of its own.
        func flush(_ raw: inout [UInt8], into scalars: inout String.UnicodeScalarView) throws(ReferenceRefusal) {
            var failed = false
            var decoder = UTF8()
            var iterator = raw.makeIterator()
            loop: while true {
                switch decoder.decode(&iterator) {
                case .scalarValue(let s): scalars.append(s)
                case .emptyInput: break loop
                case .error: failed = true; break loop
                }
            }
            raw.removeAll()
            if failed { throw .syntax }
        }
        while true {
            guard let b = current else { throw .syntax }
            index += 1
            switch b {
            case UInt8(ascii: "\""):
                try flush(&raw, into: &scalars)
                return String(scalars)
            case UInt8(ascii: "\\"):
                try flush(&raw, into: &scalars)
                scalars.append(try escape())
            case 0x00..<0x20:
                throw .syntax
            default:
                raw.append(b)
            }
        }
    }

    private mutating func escape() throws(ReferenceRefusal) -> Unicode.Scalar {
        guard let e = current else { throw .syntax }
        index += 1
        switch e {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let first = try hex4()
            if (0xDC00...0xDFFF).contains(first) { throw .syntax }
            if (0xD800...0xDBFF).contains(first) {
                try consume(UInt8(ascii: "\\"))
                try consume(UInt8(ascii: "u"))
                let second = try hex4()
                guard (0xDC00...0xDFFF).contains(second) else { throw .syntax }
                let combined = 0x10000 + (first - 0xD800) * 0x400 + (second - 0xDC00)
                guard let scalar = Unicode.Scalar(combined) else { throw .syntax }
                return scalar
            }
            guard let scalar = Unicode.Scalar(first) else { throw .syntax }
            return scalar
        default:
            throw .syntax
        }
    }

    private mutating func hex4() throws(ReferenceRefusal) -> UInt32 {
        guard index + 4 <= bytes.count else { throw .syntax }
        let text = String(decoding: bytes[index..<(index + 4)], as: UTF8.self)
        // UInt32(_:radix:) would also take a sign; JSON allows exactly four hex digits.
        guard text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }),
              let value = UInt32(text, radix: 16) else { throw .syntax }
        index += 4
        return value
    }

    private mutating func number() throws(ReferenceRefusal) -> JSONValue {
        let start = index
        func digits(_ index: inout Int, _ bytes: [UInt8]) -> Int {
            let from = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            return index - from
        }
        if current == UInt8(ascii: "-") { index += 1 }
        let intStart = index
        let intDigits = digits(&index, bytes)
        guard intDigits > 0 else { throw .syntax }
        // A leading zero must be the whole integer part ("0", "0.5", never "01").
        if bytes[intStart] == UInt8(ascii: "0") && intDigits > 1 { throw .syntax }
        var integral = true
        if current == UInt8(ascii: ".") {
            integral = false
            index += 1
            guard digits(&index, bytes) > 0 else { throw .syntax }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            integral = false
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard digits(&index, bytes) > 0 else { throw .syntax }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if integral, let exact = Int64(text) { return .int(exact) }
        guard let d = Double(text) else { throw .syntax }
        return .double(d)
    }
}
