import JSONCore
import Providers

/// One upstream attempt of a turn, as the `done` event, the stored message, Server-Timing, the
/// log line and /metrics report it.
struct AttemptRecord: Sendable {
    enum Outcome: String, Sendable {
        /// This attempt's answer is the one the client got.
        case ok
        /// Failed; `status` and `error` say how.
        case failed
        /// Stopped by the gateway: a hedge that lost, or a client that left.
        case cancelled
    }

    var model: String
    var deployment: String
    var outcome: Outcome
    var status: Int?
    var error: String?
    var ms: Int
    /// Started by hedging, beside a slow attempt.
    var hedge: Bool

    func write(_ w: inout JSONWriter) {
        w.beginObject()
        w.field("model", model)
        w.field("deployment", deployment)
        w.field("outcome", outcome.rawValue)
        if let status { w.field("status", status) }
        if let error { w.field("error", error) }
        w.field("ms", ms)
        if hedge { w.field("hedge", true) }
        w.endObject()
    }

    static func json(_ list: [AttemptRecord]) -> String {
        var w = JSONWriter()
        w.beginArray()
        for a in list { a.write(&w) }
        w.endArray()
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// `d-a:failed:503:12ms,d-b:ok:40ms`: short enough for one log field.
    static func summary(_ list: [AttemptRecord]) -> String {
        list.map { a in
            var s = "\(a.deployment):\(a.outcome.rawValue)"
            if let st = a.status { s += ":\(st)" }
            return s + ":\(a.ms)ms" + (a.hedge ? ":hedge" : "")
        }.joined(separator: ",")
    }
}
