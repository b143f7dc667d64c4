import HTTP
import Reactor

/// Timing marks of one request, set where the work happens (0: not reached).
struct RequestTiming {
    /// Database work before the upstream call (storing the user message, reading the history).
    var databaseNanos: UInt64 = 0
    var upstreamStartedAt: UInt64 = 0
    /// A streamed answer waits for the provider's status only; a non-streamed one for its whole stream.
    var upstreamStreamed = true
    /// The provider answered with its HTTP status.
    var upstreamAnsweredAt: UInt64 = 0
    /// The provider's stream ended (for a non-streamed answer, the gateway waited until then).
    var upstreamEndedAt: UInt64 = 0
    /// Upstream attempts begun before the head was written (retries, failovers, hedges).
    var attempts = 0

    mutating func upstreamStarted(streamed: Bool) {
        upstreamStartedAt = monotonicNanos()
        upstreamStreamed = streamed
    }
    mutating func upstreamAnswered() { if upstreamAnsweredAt == 0 { upstreamAnsweredAt = monotonicNanos() } }
    mutating func upstreamEnded() {
        if upstreamEndedAt == 0 { upstreamEndedAt = monotonicNanos() }
        // A refusal (429, 401…) ends the stream without an accepting status: its answer is the end.
        if upstreamAnsweredAt == 0 { upstreamAnsweredAt = upstreamEndedAt }
    }
}

/// The Server-Timing header (`gw;dur=…` always, `db;dur=…` and `upstream;dur=…` for chat turns),
/// written straight into the response head as digits: no string is built per response.
enum ServerTiming {
    /// `headAt` is when the head is written. `gw` is the time until then without the time spent
    /// waiting for the provider (from the upstream call to its status, or, for a non-streamed
    /// answer, to the end of its stream), so it shows what the gateway itself costs.
    static func append(start: UInt64, headAt: UInt64, timing t: RequestTiming?, to out: inout [UInt8]) {
        let total = headAt &- start
        var waited: UInt64 = 0
        var upstream: UInt64?
        if let t, t.upstreamStartedAt != 0, t.upstreamStartedAt <= headAt {
            let awaited = t.upstreamStreamed ? t.upstreamAnsweredAt : t.upstreamEndedAt
            let waitEnd = awaited != 0 && awaited < headAt ? awaited : headAt
            waited = waitEnd &- t.upstreamStartedAt
            if t.upstreamAnsweredAt != 0 && t.upstreamAnsweredAt <= headAt { upstream = t.upstreamAnsweredAt &- t.upstreamStartedAt }
        }
        appendStatic("Server-Timing: gw;dur=", &out)
        ServerTimingFormat.appendMillis(waited < total ? total - waited : 0, to: &out)
        if let t, t.databaseNanos > 0 {
            appendStatic(", db;dur=", &out)
            ServerTimingFormat.appendMillis(t.databaseNanos, to: &out)
        }
        if let upstream {
            appendStatic(", upstream;dur=", &out)
            ServerTimingFormat.appendMillis(upstream, to: &out)
        }
        if let t, t.attempts > 1 {
            appendStatic(", attempts;desc=", &out)
            out.append(contentsOf: String(t.attempts).utf8)
        }
        appendStatic("\r\n", &out)
    }

    private static func appendStatic(_ s: StaticString, _ out: inout [UInt8]) {
        s.withUTF8Buffer { out.append(contentsOf: $0) }
    }
}
