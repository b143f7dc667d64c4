import HTTP
import JSONCore

/// The last model requests as received, for tests that check what a relay sent upstream
/// (`GET /requests`). A ring: benches send millions of requests and must not grow the mock.
struct RequestLog {
    struct Entry {
        var method: String
        var path: String
        var query: String
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    let capacity: Int
    private var ring: [Entry] = []
    /// Where the next entry goes once the ring is full: the oldest one's slot.
    private var next = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    mutating func append(_ req: HTTPRequest) {
        let e = Entry(method: req.head.method.name, path: req.head.path, query: req.head.query ?? "", headers: req.head.headers, body: req.body)
        if ring.count < capacity {
            ring.append(e)
        } else {
            ring[next] = e
            next = (next + 1) % capacity
        }
    }

    mutating func removeAll() {
        ring.removeAll()
        next = 0
    }

    /// Oldest first.
    var entries: [Entry] { Array(ring[next...] + ring[..<next]) }

    /// `[{"method","path","query","headers":{lowercased name: value},"body"}]`; a body that is not
    /// JSON is given as its text so a test still sees what arrived.
    func json() -> [UInt8] {
        var w = JSONWriter(capacity: 1024)
        w.beginArray()
        for e in entries {
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
