import HTTP

/// HTTP requests counted by route pattern × method × status in one flat table. The hot path is
/// three small integers and an index; label strings are built only when /metrics is scraped.
struct RequestCounters: Sendable {
    /// Route patterns plus one slot for `unmatched`.
    let routeCount: Int
    /// Methods the router knows plus `other`, so a client cannot mint label values.
    static let methodNames = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "other"]

    /// Status code → block in `counts`, assigned the first time a status is seen (once per code).
    private var statusBlock = [Int16](repeating: -1, count: 1000)
    /// The status of each block, in the order first seen.
    private(set) var statuses: [Int] = []
    /// One block of `routeCount × methodNames.count` counters per status.
    private(set) var counts: [UInt64] = []

    init(routeCount: Int) { self.routeCount = max(1, routeCount) }

    static func methodIndex(_ m: HTTPMethod) -> Int {
        switch m {
        case .get: return 0
        case .head: return 1
        case .post: return 2
        case .put: return 3
        case .delete: return 4
        case .options: return 5
        case .patch: return 6
        case .other: return 7
        }
    }

    /// `route` is the pattern index (-1: unmatched); status 0 (the client left before any
    /// response) is counted as 499, nginx's "client closed request".
    mutating func count(route: Int, method: Int, status: Int) {
        let code = status == 0 ? 499 : ((100...999).contains(status) ? status : 500)
        var block = Int(statusBlock[code])
        if block < 0 {
            block = statuses.count
            statuses.append(code)
            statusBlock[code] = Int16(block)
            counts.append(contentsOf: repeatElement(0, count: routeCount * RequestCounters.methodNames.count))
        }
        let r = route >= 0 && route < routeCount - 1 ? route : routeCount - 1
        counts[(block * routeCount + r) * RequestCounters.methodNames.count + method] &+= 1
    }

    /// The non-zero counters, keyed by labels (for merging workers whose tables differ in order).
    var entries: [Key: UInt64] {
        var out: [Key: UInt64] = [:]
        let methods = RequestCounters.methodNames.count
        for (block, status) in statuses.enumerated() {
            for route in 0..<routeCount {
                for method in 0..<methods {
                    let n = counts[(block * routeCount + route) * methods + method]
                    if n > 0 { out[Key(route: route, method: method, status: status), default: 0] &+= n }
                }
            }
        }
        return out
    }

    /// `route` indexes the patterns; `routeCount - 1` is `unmatched`.
    struct Key: Hashable, Sendable, Comparable {
        let route: Int
        let method: Int
        let status: Int
        static func < (a: Key, b: Key) -> Bool { (a.route, a.method, a.status) < (b.route, b.method, b.status) }
    }
}
