/// A parsed JSON document. Integers that fit `Int64` stay exact (`.int`) so token counts and ids
/// never round-trip through `Double`; object members keep their wire order.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])
}

extension JSONValue: Equatable {
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        // 1 and 1.0 are the same JSON number; only the representation differs.
        case let (.int(a), .double(b)), let (.double(b), .int(a)): return Double(a) == b
        // Strings are equal when their code points are (as JSON sees them), not when Swift's
        // canonical equivalence says so: "\u00e9" and "e\u0301" are different JSON strings.
        case let (.string(a), .string(b)): return a.utf8.elementsEqual(b.utf8)
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            guard a.count == b.count else { return false }
            for i in a.indices where !a[i].key.utf8.elementsEqual(b[i].key.utf8) || a[i].value != b[i].value { return false }
            return true
        default: return false
        }
    }
}

extension JSONValue {
    /// The first member named `key` (nil when absent or when this is not an object). Names match
    /// by code units (RFC 8259 §8.3), not by Unicode canonical equivalence as `String ==` would.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        for member in members where member.key.utf8.elementsEqual(key.utf8) { return member.value }
        return nil
    }

    /// The element at `index` (nil when out of range or when this is not an array).
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let items) = self, items.indices.contains(index) else { return nil }
        return items[index]
    }

    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Exact integers; a double is accepted only when it is integral and in range.
    public var int: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d):
            return JSON.exactInteger(d)
        default: return nil
        }
    }

    public var double: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var array: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var object: [(key: String, value: JSONValue)]? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
