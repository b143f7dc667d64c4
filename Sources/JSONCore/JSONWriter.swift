/// Streams compact JSON into a byte buffer, inserting commas and colons itself, so request
/// bodies can be written field by field without an intermediate `JSONValue`.
public struct JSONWriter {
    public var bytes: [UInt8]
    /// Bit `d` set: the container at depth `d` (below 64) already has a member, so the next one
    /// needs a comma.
    var hasMember: UInt64 = 0
    /// The same flag for depths 64 and deeper (index `depth - 64`). A tree the parser accepted
    /// (at most 64 deep by default) can still end up deeper once a builder nests it inside its own
    /// envelope; sharing bits modulo 64 there dropped commas and wrote invalid JSON.
    var deepHasMember: [Bool] = []
    var depth = 0
    var afterKey = false

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Continues writing into an existing buffer (e.g. a reused frame buffer).
    public init(appendingTo bytes: [UInt8]) {
        self.bytes = bytes
    }

    @inline(__always)
    mutating func beforeValue() {
        if afterKey {
            afterKey = false
            return
        }
        guard depth > 0 else { return }
        if depth < 64 {
            let bit: UInt64 = 1 << UInt64(depth)
            if hasMember & bit != 0 { bytes.append(UInt8(ascii: ",")) }
            hasMember |= bit
        } else {
            if deepHasMember[depth - 64] { bytes.append(UInt8(ascii: ",")) }
            deepHasMember[depth - 64] = true
        }
    }

    /// Enters a container: it has no member yet.
    @inline(__always)
    mutating func pushContainer() {
        depth += 1
        if depth < 64 {
            hasMember &= ~(1 << UInt64(depth))
        } else if depth - 64 < deepHasMember.count {
            deepHasMember[depth - 64] = false
        } else {
            // Depth grows one level at a time, so the next slot is always the end.
            deepHasMember.append(false)
        }
    }

    public mutating func beginObject() {
        beforeValue()
        bytes.append(UInt8(ascii: "{"))
        pushContainer()
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        depth -= 1
    }

    public mutating func beginArray() {
        beforeValue()
        bytes.append(UInt8(ascii: "["))
        pushContainer()
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        depth -= 1
    }

    /// Writes a member name; the next call writes its value.
    public mutating func key(_ name: String) {
        beforeValue()
        JSON.appendString(name, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    public mutating func string(_ value: String) {
        beforeValue()
        JSON.appendString(value, to: &bytes)
    }

    public mutating func int(_ value: Int) {
        beforeValue()
        JSON.appendInt(Int64(value), to: &bytes)
    }

    public mutating func double(_ value: Double) {
        beforeValue()
        JSON.appendDouble(value, to: &bytes)
    }

    public mutating func bool(_ value: Bool) {
        beforeValue()
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    public mutating func null() {
        beforeValue()
        bytes.append(contentsOf: "null".utf8)
    }

    /// Writes a whole tree as one value.
    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: null()
        case .bool(let b): bool(b)
        case .int(let i):
            beforeValue()
            JSON.appendInt(i, to: &bytes)
        case .double(let d): double(d)
        case .string(let s): string(s)
        case .array(let items):
            beginArray()
            for item in items { self.value(item) }
            endArray()
        case .object(let members):
            beginObject()
            for member in members {
                key(member.key)
                self.value(member.value)
            }
            endObject()
        }
    }

    // Convenience for the common "key": value pairs.
    public mutating func field(_ name: String, _ value: String) { key(name); string(value) }
    public mutating func field(_ name: String, _ value: Int) { key(name); int(value) }
    public mutating func field(_ name: String, _ value: Double) { key(name); double(value) }
    public mutating func field(_ name: String, _ value: Bool) { key(name); bool(value) }
    /// `"name": value`, or `"name": null` when the value is absent.
    public mutating func field(_ name: String, _ value: String?) {
        key(name)
        if let value { string(value) } else { null() }
    }
    public mutating func field(_ name: String, _ value: Int?) {
        key(name)
        if let value { int(value) } else { null() }
    }
}

extension JSONValue {
    /// Compact serialization.
    public var jsonBytes: [UInt8] {
        var writer = JSONWriter()
        writer.value(self)
        return writer.bytes
    }

    /// Compact serialization as text.
    public var jsonString: String { String(decoding: jsonBytes, as: UTF8.self) }
}
