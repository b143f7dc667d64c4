/// Strict RFC 8259 parsing into a `JSONValue` tree. For hot paths that need only a few members,
/// use `JSONScanner` directly instead.
public enum JSONParser {
    /// Default nesting limit: deep enough for any provider payload, shallow enough that recursion
    /// can never exhaust the stack.
    public static let defaultMaxDepth = 64

    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSONValue {
        var scanner = JSONScanner(bytes, maxDepth: maxDepth)
        let value = try scanner.readValue()
        try scanner.finish()
        return value
    }

    public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSONValue {
        var outcome: Result<JSONValue, JSONError>?
        let run = { (raw: UnsafeRawBufferPointer) in
            do throws(JSONError) {
                outcome = .success(try parse(raw, maxDepth: maxDepth))
            } catch {
                outcome = .failure(error)
            }
        }
        if bytes.withContiguousStorageIfAvailable({ run(UnsafeRawBufferPointer($0)) }) == nil {
            Array(bytes).withUnsafeBytes { run($0) }
        }
        guard let outcome else { throw JSONError(.unexpectedEnd, "no input", at: 0) }
        return try outcome.get()
    }

    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }
}
