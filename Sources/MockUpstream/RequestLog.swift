import HTTP
import JSONCore

/// The last model requests as received, and what became of each, for tests that check what a
/// relay sent upstream and whether it let a transfer finish (`GET /requests`). A ring: benches
/// send millions of requests and must not grow the mock.
struct RequestLog {
    enum Outcome: String {
        /// Not finished yet (streaming, or waiting to answer).
        case streaming
        /// Answered in full, an error status included.
        case complete
        /// The client closed before the response ended: how a test sees the gateway cancel.
        case disconnected
        /// The mock dropped the connection on purpose (a reset fault).
        case reset
    }

    struct Entry {
        let seq: Int
        var method: String
        var path: String
        var query: String
        var headers: HTTPHeaders
        var body: [UInt8]
        var tag: String?
        /// CLOCK_MONOTONIC at arrival, the clock of Python's `time.monotonic()`.
        var atNanos: UInt64
        var fault: String?
        var outcome = Outcome.streaming
    }

    let capacity: Int
    private var ring: [Entry] = []
    /// Where the next entry goes once the ring is full: the oldest one's slot.
    private var next = 0
    /// Never reused, so an update arriving after its entry was overwritten cannot touch the newer
    /// entry in the same slot.
    private var nextSeq = 0
    /// The seq of the first entry since the last clear: entry `seq` sits in slot
    /// `(seq - base) % capacity`, so an update finds it without a scan.
    private var base = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Logs a request and returns its seq, the handle for `update`.
    mutating func append(_ req: HTTPRequest, at nanos: UInt64) -> Int {
        let e = Entry(seq: nextSeq, method: req.head.method.name, path: req.head.path, query: req.head.query ?? "",
                      headers: req.head.headers, body: req.body, tag: req.head.headers[MockTag.header], atNanos: nanos)
        nextSeq += 1
        if ring.count < capacity {
            ring.append(e)
        } else {
            ring[next] = e
            next = (next + 1) % capacity
        }
        return e.seq
    }

    /// Changes an entry still in the ring; one already overwritten or cleared is left alone.
    mutating func update(_ seq: Int, _ change: (inout Entry) -> Void) {
        guard seq >= base else { return }
        let slot = (seq - base) % capacity
        guard slot < ring.count, ring[slot].seq == seq else { return }
        change(&ring[slot])
    }

    mutating func removeAll() {
        ring.removeAll()
        next = 0
        base = nextSeq
    }

    /// Oldest first.
    var entries: [Entry] { Array(ring[next...] + ring[..<next]) }

    /// `[{"method","path","query","headers":{lowercased name: value},"body","tag","at_ms","fault",
    /// "outcome"}]`, only `tag`'s entries when given; a body that is not JSON is given as its
    /// text so a test still sees what arrived.
    func json(tag: String? = nil) -> [UInt8] {
        var w = JSONWriter(capacity: 1024)
        w.beginArray()
        for e in entries where tag == nil || e.tag == tag {
            w.beginObject()
            w.field("method", e.method)
            w.field("path", e.path)
            w.field("query", e.query)
            w.key("headers")
            w.beginObject()
            for (name, value) in RequestLog.lowercased(e.headers) { w.field(name, value) }
            w.endObject()
            w.key("body")
            if let parsed = try? JSONParser.parse(e.body) {
                w.value(parsed)
            } else {
                w.string(String(decoding: e.body, as: UTF8.self))
            }
            w.field("tag", e.tag)
            // Whole milliseconds: the gateway's waits are in ms, and an integer reads as one in any client.
            w.field("at_ms", Int(e.atNanos / 1_000_000))
            w.field("fault", e.fault)
            w.field("outcome", e.outcome.rawValue)
            w.endObject()
        }
        w.endArray()
        return w.bytes
    }

    /// Names lowercased, in arrival order; a repeated field's values joined with ", " as HTTP
    /// allows, so each name stays a single JSON member.
    private static func lowercased(_ headers: HTTPHeaders) -> [(String, String)] {
        var out: [(String, String)] = []
        for (name, value) in headers {
            let lower = name.lowercased()
            if let i = out.firstIndex(where: { $0.0 == lower }) {
                out[i].1 += ", " + value
            } else {
                out.append((lower, value))
            }
        }
        return out
    }
}
