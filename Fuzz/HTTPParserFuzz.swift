// libFuzzer entry point for the HTTP/1.1 request parser. Built standalone, together with
// Sources/HTTP/Codec/*.swift only, by scripts/fuzz.sh:
//   swiftc -sanitize=fuzzer,address -parse-as-library -O Sources/HTTP/Codec/*.swift Fuzz/HTTPParserFuzz.swift
//
// Besides "no crash / no ASan report", it checks the parser's contract on every input:
// - `consumed` is within 0...bytes.count;
// - `.head` / `.request` always make progress (so a caller's loop terminates);
// - a failed parser stays failed and consumes nothing;
// - the results do not depend on how the input was split into reads (whole, byte by byte,
//   fixed-size pieces, and a cut derived from the input all give the same sequence).
// A broken invariant calls fatalError, which libFuzzer reports as a crash with the input saved.

/// Small limits so the fuzzer reaches every limit path with short inputs.
private let fuzzLimits = HTTPParserLimits(maxURIBytes: 48, maxHeaderBytes: 160, maxBodyBytes: 96, maxHeaderCount: 6)

/// The caller loop a server runs: append a read, parse until `.needMore`, drop what was consumed.
private func run(_ input: UnsafeBufferPointer<UInt8>, pieceSizes: (Int) -> Int) -> [HTTPParseResult] {
    var parser = HTTPRequestParser(limits: fuzzLimits)
    var buffer: [UInt8] = []
    var results: [HTTPParseResult] = []
    var offset = 0
    var readIndex = 0
    while offset < input.count {
        let size = max(1, min(pieceSizes(readIndex), input.count - offset))
        buffer.append(contentsOf: input[offset..<(offset + size)])
        offset += size
        readIndex += 1
        // Every result but the last consumes at least one byte, so this bounds the calls per read.
        let budget = buffer.count + 2
        var iterations = 0
        while true {
            iterations += 1
            if iterations > budget { fatalError("parse loop without progress") }
            let (consumed, result) = buffer.withUnsafeBytes { parser.parse($0) }
            if consumed < 0 || consumed > buffer.count { fatalError("consumed \(consumed) of \(buffer.count)") }
            buffer.removeFirst(consumed)
            switch result {
            case .needMore:
                break
            case .failed:
                results.append(result)
                let (again, second) = buffer.withUnsafeBytes { parser.parse($0) }
                if again != 0 || second != result { fatalError("parser did not stay failed") }
                return results
            case .head, .request:
                if consumed == 0 { fatalError("result without consuming input") }
                results.append(result)
                continue
            }
            break
        }
    }
    return results
}

@_cdecl("LLVMFuzzerTestOneInput")
public func httpParserFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let whole = run(input) { _ in Int.max }
    let cut = size > 0 ? Int(input[0]) % size + 1 : 1
    let patterns: [(Int) -> Int] = [
        { _ in 1 },
        { _ in 7 },
        { index in index == 0 ? cut : Int.max },
        { index in [3, 1, 11, 2, 64][index % 5] },
    ]
    for pattern in patterns {
        let split = run(input, pieceSizes: pattern)
        if split != whole {
            fatalError("results depend on read boundaries: \(whole) vs \(split)")
        }
    }
    return 0
}
