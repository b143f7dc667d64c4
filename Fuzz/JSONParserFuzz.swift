// libFuzzer entry point for JSONCore (scanner, tree parser and writer). Built standalone, together
// with Sources/JSONCore/*.swift and Fuzz/JSONReferenceParser.swift only, by scripts/fuzz.sh.
//
// Besides "no crash / no ASan report", it checks on every input:
// - JSONParser and the independent reference parser give the same verdict, and for accepted
//   input the same value: same cases (.int vs .double), same number bits, same Unicode scalars
//   (not Swift's canonical-equivalence String ==, which would hide decoding bugs);
// - the validating scanner alone (skipValue + finish) gives the same verdict as the parser:
//   the streaming decoders rely on it to refuse exactly what the parser refuses;
// - every error offset lies within the input;
// - accepted values survive the writer: written bytes parse again to an equal value (non-finite
//   doubles, which have no JSON form, come back as the documented `null`), and writing that again
//   gives the same bytes (the writer's output is a fixed point);
// - object member names compare the same through `JSONKey == StaticString` as through their
//   decoded scalars (the decoders pick members that way).
// All checks run at a small depth limit (reached with short inputs) and at one above 64, the
// writer's in-word depth bookkeeping. A broken invariant calls fatalError, which libFuzzer reports
// as a crash with the input saved.

private let depthLimits = [8, 80]

/// Strict structural identity: what the reference parser and JSONCore must agree on.
private func identical(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case let (.bool(x), .bool(y)): return x == y
    case let (.int(x), .int(y)): return x == y
    case let (.double(x), .double(y)): return x.bitPattern == y.bitPattern
    case let (.string(x), .string(y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
    case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { identical($0, $1) }
    case let (.object(x), .object(y)):
        return x.count == y.count && zip(x, y).allSatisfy {
            $0.key.unicodeScalars.elementsEqual($1.key.unicodeScalars) && identical($0.value, $1.value)
        }
    default: return false
    }
}

/// What a value should read back as after the writer: numbers compare by value (1.0 is written
/// as 1, -0.0 as 0), non-finite doubles become null, strings compare by scalars.
private func survivesWriting(_ original: JSONValue, _ reread: JSONValue) -> Bool {
    switch (original, reread) {
    case let (.double(d), .null) where !d.isFinite: return true
    case (.int, .int), (.int, .double), (.double, .int), (.double, .double): return original == reread
    case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { survivesWriting($0, $1) }
    case let (.object(x), .object(y)):
        return x.count == y.count && zip(x, y).allSatisfy {
            $0.key.unicodeScalars.elementsEqual($1.key.unicodeScalars) && survivesWriting($0.value, $1.value)
        }
    default: return identical(original, reread)
    }
}

private func checkOffset(_ error: JSONError, _ count: Int, _ what: String) {
    if error.offset < 0 || error.offset > count { fatalError("\(what): error offset \(error.offset) outside 0...\(count): \(error)") }
}

/// The scanner's verdict when asked only to validate.
private func scannerVerdict(_ raw: UnsafeRawBufferPointer, maxDepth: Int) -> Bool {
    var scanner = JSONScanner(raw, maxDepth: maxDepth)
    do throws(JSONError) {
        try scanner.skipValue()
        try scanner.finish()
        return true
    } catch {
        checkOffset(error, raw.count, "scanner")
        return false
    }
}

/// Walks every object in the document through `nextKey`, comparing the fast member-name check
/// the decoders use with the decoded name.
private func checkKeyComparisons(_ raw: UnsafeRawBufferPointer, maxDepth: Int) {
    func walk(_ s: inout JSONScanner) throws(JSONError) {
        switch try s.nextKind() {
        case .object:
            try s.beginObject()
            while let key = try s.nextKey() {
                let scalars = key.string.unicodeScalars
                let names: [(StaticString, String)] = [("a", "a"), ("K", "K"), ("content", "content"), ("\u{E9}", "\u{E9}")]
                for (name, text) in names where (key == name) != scalars.elementsEqual(text.unicodeScalars) {
                    fatalError("JSONKey == \"\(text)\" disagrees with the decoded name \(key.string.unicodeScalars.map { $0.value })")
                }
                try walk(&s)
            }
        case .array:
            try s.beginArray()
            while try s.nextElement() { try walk(&s) }
        default:
            try s.skipValue()
        }
    }
    var scanner = JSONScanner(raw, maxDepth: maxDepth)
    do throws(JSONError) { try walk(&scanner) } catch { checkOffset(error, raw.count, "key walk") }
}

private func check(_ input: [UInt8], maxDepth: Int) {
    let reference = ReferenceJSONParser.parse(input, maxDepth: maxDepth)
    let parsed: Result<JSONValue, JSONError>
    do throws(JSONError) {
        parsed = .success(try JSONParser.parse(input, maxDepth: maxDepth))
    } catch {
        checkOffset(error, input.count, "parser")
        parsed = .failure(error)
    }
    let scannerAccepts = input.withUnsafeBytes { scannerVerdict($0, maxDepth: maxDepth) }
    input.withUnsafeBytes { checkKeyComparisons($0, maxDepth: maxDepth) }

    switch (parsed, reference) {
    case let (.success(value), .success(expected)):
        if !identical(value, expected) { fatalError("parser and reference disagree: \(value) vs \(expected)") }
    case let (.success(value), .failure(refusal)):
        fatalError("parser accepts what the reference refuses (\(refusal)): \(value)")
    case let (.failure(error), .success(expected)):
        fatalError("parser refuses (\(error)) what the reference accepts: \(expected)")
    case (.failure, .failure):
        break
    }
    let parserAccepts = (try? parsed.get()) != nil
    if scannerAccepts != parserAccepts { fatalError("scanner says \(scannerAccepts), parser says \(parserAccepts)") }

    guard case .success(let value) = parsed else { return }
    let written = value.jsonBytes
    let reread: JSONValue
    do throws(JSONError) {
        reread = try JSONParser.parse(written, maxDepth: maxDepth)
    } catch {
        fatalError("written form does not parse (\(error)): \(String(decoding: written, as: UTF8.self))")
    }
    if !survivesWriting(value, reread) { fatalError("round trip changed the value: \(value) vs \(reread)") }
    if reread.jsonBytes != written { fatalError("writer output is not a fixed point: \(String(decoding: written, as: UTF8.self))") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func jsonParserFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    for limit in depthLimits { check(input, maxDepth: limit) }
    return 0
}
