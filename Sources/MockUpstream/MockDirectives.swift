import JSONCore

/// What a test asks of one mock answer. Directives travel inside the last user message, e.g.
/// `[mock tokens=20 delay=20 jitter=5 first=5 fault=429 after=3 stamp]`, because that is the only part of
/// a request every relay (ChatRelay, nginx, LiteLLM) passes through unchanged. Command-line
/// flags give the defaults.
///
/// Keys: `tokens=N`, `delay=MS`, `first=MS`, `jitter=MS`, `fault=NAME` (see `Fault`), `after=N`,
/// `stamp`, `split=BYTES`, and `quirk=A,B` (see `Quirk`; OpenAI-format routes only, the key may
/// repeat). Unknown keys and quirk names are ignored.
///
/// The prompt cannot tell deployments apart: a gateway sends the same body to each. So a request
/// whose `X-Mock-Tag` has a runtime fault (`PUT /faults/{tag}`, see `FaultRule`) takes that fault
/// instead of its `fault=`; its other keys (`tokens`, `delay`, `first`, …) still apply:
/// - `{"status": N, "retry_after": "…", "retry_after_ms": "…"}`: HTTP N at once, with the route's
///   error body, and those values as `Retry-After` / `retry-after-ms` (`null` removes the header);
/// - `{"kind": "reset"}`: the connection is dropped, nothing answered;
/// - `{"kind": "midstream", "after": N}`: as `fault=midstream after=N` (non-streamed: HTTP 500);
/// - `{"kind": "slow_first", "first_delay_ms": MS}`: no event for MS after the head, then a normal answer;
/// - `{"kind": "hang"}`: as `fault=hang` (non-streamed: no answer at all);
/// - `"times": N` on any of them: only the next N tagged requests.
struct MockDirectives {
    var tokens = 8
    var delayMs = 0.0
    var firstDelayMs = 0.0
    /// Each gap between tokens is `delayMs` ± up to this much, uniformly: real providers do not
    /// tick like a clock, and streams that do all tick together.
    var jitterMs = 0.0
    var fault: Fault?
    /// Tokens sent before a mid-stream fault.
    var after = 2
    /// Stamp each token with the mock's monotonic send time in ns ("@<ns> "), for latency benches.
    var stamp = false
    /// Write each event in pieces of this many bytes, one piece per millisecond (framing tests).
    var split = 0
    /// Answer with the user's text instead of generated tokens.
    var echo: String?
    /// Deviations from OpenAI's stream that OpenAI-compatible servers really show, so the gateway
    /// is tested against them.
    var quirks: Set<Quirk> = []
    /// Silence after the response head before any event, the preamble included (before a
    /// non-streamed answer: added to its wait). Set by a `slow_first` runtime fault, not by the
    /// prompt: a provider slow to start at all, which `first` (after the role chunk) is not.
    var silenceMs = 0.0

    /// `fault=` in the prompt. A status answers at once with the route's error; `midstream`
    /// streams `after` tokens then the provider's in-stream error; `reset` drops the connection
    /// after `after` tokens; `truncate` ends the body without the format's terminator; `hang`
    /// sends the head then nothing; `malformed` sends a broken event. The last five apply to
    /// streamed answers only.
    enum Fault: String {
        case http429 = "429", http500 = "500", http529 = "529", http401 = "401", http400 = "400"
        case midstream, reset, truncate, hang, malformed
    }

    enum Quirk: String {
        /// No usage anywhere, even when `stream_options.include_usage` asked for it.
        case noUsage = "no-usage"
        /// Usage rides in the finish chunk instead of a `choices: []` chunk, asked for or not.
        case usageInLast = "usage-in-last"
        /// A `choices: []` chunk without usage right after the role chunk.
        case emptyChoices = "empty-choices"
        /// Two `reasoning_content` deltas (DeepSeek, vLLM) before the answer; not answer tokens.
        case reasoning
        /// The body ends after the last chunk with no `data: [DONE]`.
        case noDone = "no-done"
    }

    /// Parses `[mock …]` out of the text; unknown keys are ignored so tests stay forward-compatible.
    static func parse(_ text: String, defaults: MockDirectives) -> MockDirectives {
        var d = defaults
        guard let open = text.range(of: "[mock"), let close = text[open.upperBound...].firstIndex(of: "]") else {
            if text.hasPrefix("echo:") { d.echo = String(text.dropFirst(5)) }
            return d
        }
        for part in text[open.upperBound..<close].split(separator: " ") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            // A lone "=" splits into nothing.
            guard let key = kv.first else { continue }
            let value = kv.count > 1 ? kv[1] : ""
            switch key {
            case "tokens": d.tokens = max(0, min(Int(value) ?? d.tokens, 100_000))
            case "delay": d.delayMs = max(0, Double(value) ?? d.delayMs)
            case "first": d.firstDelayMs = max(0, Double(value) ?? d.firstDelayMs)
            case "jitter": d.jitterMs = max(0, Double(value) ?? d.jitterMs)
            case "fault": d.fault = Fault(rawValue: value)
            case "after": d.after = max(0, Int(value) ?? d.after)
            case "stamp": d.stamp = true
            case "split": d.split = max(0, Int(value) ?? 0)
            case "quirk":
                for name in value.split(separator: ",") {
                    if let q = Quirk(rawValue: String(name)) { d.quirks.insert(q) }
                }
            default: continue
            }
        }
        return d
    }
}

extension String {
    /// Substring search without Foundation.
    func range(of needle: String) -> Range<String.Index>? {
        guard !needle.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(needle) { return i..<(index(i, offsetBy: needle.count)) }
            i = index(after: i)
        }
        return nil
    }
}

/// Words of the answer the mock generates when not echoing.
enum MockText {
    static let words = ["Hello", " from", " the", " mock", " upstream", ",", " token", " stream", " é", " ✓"]

    static func token(_ i: Int, stamp: Bool, nowNanos: UInt64) -> String {
        if stamp { return "@\(nowNanos) " }
        return words[i % words.count]
    }

    /// Text of a message `content`: a string or an array of text parts; nil for anything else.
    static func text(of content: JSONValue?) -> String? {
        if let s = content?.string { return s }
        guard let parts = content?.array else { return nil }
        var out = ""
        for p in parts {
            guard let t = p["text"]?.string else { return nil }
            out += t
        }
        return out
    }

    /// Rough token count of a prompt: whitespace-separated words.
    static func countWords(_ s: String) -> Int {
        s.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).count
    }
}
