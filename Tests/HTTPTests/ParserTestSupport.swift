import HTTP

/// Small limits so limit cases stay readable.
let testLimits = HTTPParserLimits(maxURIBytes: 64, maxHeaderBytes: 256, maxBodyBytes: 100, maxHeaderCount: 5)

/// Plays the server's role: appends each chunk to an unread buffer, calls `parse` until it says
/// `.needMore`, drops what was consumed. Returns every result except `.needMore`, plus whatever
/// remained unconsumed, and any contract violation seen.
struct DriveOutcome: Equatable {
    var results: [HTTPParseResult] = []
    var leftover: [UInt8] = []
    var violations: [String] = []
}

func drive(_ chunks: [[UInt8]], limits: HTTPParserLimits = testLimits) -> DriveOutcome {
    var parser = HTTPRequestParser(limits: limits)
    var buffer: [UInt8] = []
    var outcome = DriveOutcome()
    feeding: for chunk in chunks {
        buffer.append(contentsOf: chunk)
        while true {
            let (consumed, result) = buffer.withUnsafeBytes { parser.parse($0) }
            if consumed < 0 || consumed > buffer.count {
                outcome.violations.append("consumed \(consumed) of \(buffer.count)")
                break feeding
            }
            buffer.removeFirst(consumed)
            switch result {
            case .needMore:
                continue feeding
            case .failed:
                outcome.results.append(result)
                // The parser must stay failed and consume nothing more.
                let (again, second) = buffer.withUnsafeBytes { parser.parse($0) }
                if again != 0 || second != result { outcome.violations.append("did not stay failed") }
                break feeding
            case .head, .request:
                if consumed == 0 { outcome.violations.append("result without progress") }
                outcome.results.append(result)
            }
        }
    }
    outcome.leftover = buffer
    return outcome
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

extension HTTPParseResult {
    var failureStatus: Int? {
        if case .failed(let error) = self { return error.status }
        return nil
    }
    var request: HTTPRequest? {
        if case .request(let request) = self { return request }
        return nil
    }
    var head: HTTPRequestHead? {
        if case .head(let head) = self { return head }
        return nil
    }
}

extension DriveOutcome {
    var requests: [HTTPRequest] { results.compactMap(\.request) }
    var failureStatus: Int? { results.last?.failureStatus }
}
