import Histogram

/// Latency histogram in microseconds, 1 µs to 1 h, 3 significant digits.
struct LatencyHistogram {
    var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)

    mutating func record(nanos: UInt64) {
        let us = max(1, min(nanos / 1_000, 3_600_000_000))
        _ = h.record(us)
    }

    var count: UInt64 { h.totalCount }
    func percentile(_ p: Double) -> UInt64 { h.totalCount == 0 ? 0 : h.valueAtPercentile(p) }
    var maxValue: UInt64 { h.totalCount == 0 ? 0 : h.max }
    var mean: Double { h.totalCount == 0 ? 0 : h.mean }
}

/// What one run measured.
final class RunStats {
    var ttft = LatencyHistogram()
    /// Time to the response head (status line and headers).
    var ttfb = LatencyHistogram()
    var gap = LatencyHistogram()
    var stampDelay = LatencyHistogram()
    var total = LatencyHistogram()
    var connect = LatencyHistogram()

    var started = 0
    var completed = 0
    var tokens = 0
    var stamps = 0
    var connectionsOpened = 0
    /// Error kind → count. Kinds: connect, http_<status>, stream_error, truncated, timeout,
    /// protocol, aborted (cut by the hard stop), dropped (open loop over --max-streams).
    var errors: [String: Int] = [:]

    func error(_ kind: String) { errors[kind, default: 0] += 1 }
    var errorCount: Int { errors.values.reduce(0, +) }
}

/// Pulls every `@<digits>` stamp out of a token's text (a relay may coalesce several tokens).
@inline(__always)
func forEachStamp(_ text: UnsafeRawBufferPointer, _ body: (UInt64) -> Void) {
    var i = 0
    let n = text.count
    while i < n {
        if text[i] == UInt8(ascii: "@") {
            var v: UInt64 = 0
            var j = i + 1
            while j < n, text[j] >= 0x30, text[j] <= 0x39, j - i < 21 {
                v = v &* 10 &+ UInt64(text[j] - 0x30)
                j += 1
            }
            if j > i + 1 { body(v) }
            i = j
        } else {
            i += 1
        }
    }
}
