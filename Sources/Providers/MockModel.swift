/// What the built-in mock answers: the tokens to stream, in order, and the final accounting.
public struct MockPlan: Sendable, Equatable {
    public var tokens: [String]
    public var usage: Usage
    public var finish: FinishReason
}

/// The built-in `mock-*` models: deterministic answers with no network and no timers, so tests,
/// demos and benchmarks exercise the full relay path (the caller paces the tokens).
public enum MockModel {
    /// Upper bound for `mock-tokens-N`, so a request cannot make the gateway build a huge answer.
    public static let maxTokens = 100_000

    /// `mock-echo`: the last user message, split into word-ish tokens that concatenate back to it.
    /// `mock-tokens-N`: `tok1 `, `tok2 `, … `tokN `. `max_tokens` truncates with finish `length`.
    public static func plan(for request: ChatRequest) throws(ProviderError) -> MockPlan {
        let name = request.model
        var tokens: [String]
        if name == "mock-echo" {
            let last = request.messages.last(where: { $0.role == .user })?.content ?? ""
            tokens = wordTokens(last)
        } else if name.hasPrefix("mock-tokens-"), let n = Int(name.dropFirst("mock-tokens-".count)), n >= 0, n <= maxTokens {
            tokens = (1...max(n, 1)).prefix(n).map { "tok\($0) " }
        } else {
            throw ProviderError(.unknownModel, "unknown model '\(name)'", param: "model")
        }
        var finish = FinishReason(.stop, raw: "stop")
        if let limit = request.maxTokens, limit >= 0, tokens.count > limit {
            tokens.removeLast(tokens.count - limit)
            finish = FinishReason(.length, raw: "length")
        }
        var prompt = 0
        if let system = request.system { prompt += wordCount(system) }
        for m in request.messages { prompt += wordCount(m.content) }
        let usage = Usage(promptTokens: prompt, completionTokens: tokens.count, totalTokens: prompt + tokens.count)
        return MockPlan(tokens: tokens, usage: usage, finish: finish)
    }

    /// True for the names `plan` accepts: `mock-echo` and `mock-tokens-N` (0 ≤ N ≤ maxTokens).
    public static func isModelName(_ name: String) -> Bool {
        if name == "mock-echo" { return true }
        guard name.hasPrefix("mock-tokens-"), let n = Int(name.dropFirst("mock-tokens-".count)) else { return false }
        return n >= 0 && n <= maxTokens
    }

    /// Splits after each run of whitespace: "Hello, big world" → ["Hello, ", "big ", "world"].
    /// Leading whitespace stays with the first token so nothing is lost.
    static func wordTokens(_ text: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        var inSpace = false
        for ch in text {
            let space = ch.isWhitespace
            if !space && inSpace && !current.isEmpty && current.contains(where: { !$0.isWhitespace }) {
                tokens.append(current)
                current = ""
            }
            current.append(ch)
            inSpace = space
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }

    static func wordCount(_ text: String) -> Int {
        var count = 0
        var inWord = false
        for ch in text {
            if ch.isWhitespace {
                inWord = false
            } else if !inWord {
                inWord = true
                count += 1
            }
        }
        return count
    }
}
