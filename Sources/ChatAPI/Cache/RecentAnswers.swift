import Reactor
import Storage

/// The cache entries this worker used last, kept in memory until their own expiry so that a
/// repeated request is answered without a database round trip. Bounded by the bytes of their
/// text; the oldest go first. An entry replaced or evicted in PostgreSQL may still be served from
/// here until it expires: entries for one key are answers to the same request, so either is right.
struct RecentAnswers {
    private struct Entry {
        let answer: CachedAnswer
        let expiresAt: UInt64
        let bytes: Int
    }

    private var entries: [CacheKey: Entry] = [:]
    /// Insertion order, for eviction; keys already gone are skipped when met.
    private var order: [CacheKey] = []
    private var orderStart = 0
    private var bytes = 0
    let maxBytes: Int

    init(maxBytes: Int) { self.maxBytes = maxBytes }

    mutating func get(_ key: CacheKey, now: UInt64) -> CachedAnswer? {
        guard let e = entries[key] else { return nil }
        guard e.expiresAt > now else {
            remove(key)
            return nil
        }
        return e.answer
    }

    mutating func put(_ key: CacheKey, _ answer: CachedAnswer, lifetimeMillis: Int64, now: UInt64) {
        let size = answer.sizeBytes
        guard lifetimeMillis > 0, size <= maxBytes / 4 else { return }
        remove(key)
        entries[key] = Entry(answer: answer, expiresAt: now &+ UInt64(lifetimeMillis) &* 1_000_000, bytes: size)
        order.append(key)
        bytes += size
        while bytes > maxBytes, orderStart < order.count {
            let oldest = order[orderStart]
            orderStart += 1
            remove(oldest)
        }
        // The eviction order's consumed prefix is dropped once it is most of the array.
        if orderStart > 1024 && orderStart * 2 > order.count {
            order.removeFirst(orderStart)
            orderStart = 0
        }
    }

    private mutating func remove(_ key: CacheKey) {
        guard let e = entries.removeValue(forKey: key) else { return }
        bytes -= e.bytes
    }

    var count: Int { entries.count }
}
