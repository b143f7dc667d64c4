import Providers
import Reactor
import Storage

/// The response cache and request coalescing of one worker (docs/API.md, "Response cache"): a
/// cacheable request joins an identical answer this worker is already producing, else is served
/// from the cache in PostgreSQL, else starts a live answer that identical requests may join and
/// that the cache keeps once it completes. Coalescing is per worker; the cache is shared by every
/// worker and instance.
final class ResponseCache {
    private let loop: EventLoop
    private let store: CacheStore
    private let logger: Logger
    private let maxBytes: Int
    private var inFlight: [CacheKey: SharedAnswer] = [:]
    private var recent: RecentAnswers
    /// Entries stored since the last eviction pass; passes run only after writes.
    private var storedSinceEviction = false
    private var evictionTimer: TimerID?
    static let evictionIntervalMillis: Int64 = 10_000

    private(set) var hits: UInt64 = 0
    private(set) var misses: UInt64 = 0
    private(set) var joins: UInt64 = 0
    private(set) var bytesServed: UInt64 = 0
    private(set) var stores: UInt64 = 0

    init(loop: EventLoop, store: CacheStore, logger: Logger, maxBytes: Int, memoryBytes: Int) {
        self.loop = loop
        self.store = store
        self.logger = logger
        self.maxBytes = maxBytes
        recent = RecentAnswers(maxBytes: memoryBytes)
    }

    /// Finds the answer a request with `policy` reads: `then` gets it and whether this reader
    /// pays for it (only the one whose request went upstream does). `live` makes the upstream of
    /// a new answer, started once its first reader is attached.
    func share(_ key: CacheKey, policy: CachePolicy, model: String, then: @escaping (SharedAnswer, _ pays: Bool) -> Void,
               live: @escaping (SharedAnswer) -> ResilientUpstream) {
        if policy.lookup, let a = inFlight[key] {
            // A whole answer still here (being written to the cache) is as good as a hit.
            if a.ended { countHit(a) } else { joins &+= 1 }
            return then(a, false)
        }
        let a = SharedAnswer(key: key)
        if policy.lookup, let hit = recent.get(key, now: monotonicNanos()) {
            a.fill(hit)
            countHit(a)
            return then(a, false)
        }
        inFlight[key] = a
        a.onEnd = { [weak self] a in self?.ended(a, ttlSeconds: policy.ttlSeconds, model: model) }
        guard policy.lookup else {
            misses &+= 1
            return goLive(a, then: then, live: live)
        }
        store.lookup(key: key.digest) { [self] result in
            switch result {
            case .success(let hit?):
                recent.put(key, hit, lifetimeMillis: hit.remainingMillis, now: monotonicNanos())
                a.fill(hit)
                countHit(a)
                then(a, false)
            case .success(nil):
                misses &+= 1
                goLive(a, then: then, live: live)
            case .failure(let e):
                // The cache is an optimisation: without the database the answer is live.
                logger.warn("response cache lookup failed", [("error", .string(e.description))])
                misses &+= 1
                goLive(a, then: then, live: live)
            }
        }
    }

    private func goLive(_ a: SharedAnswer, then: (SharedAnswer, Bool) -> Void, live: (SharedAnswer) -> ResilientUpstream) {
        then(a, true)
        // The first reader's client may have left meanwhile; then nobody waits for an answer.
        if a.readers == 0 { a.abandon() } else { a.start(live(a)) }
    }

    private func countHit(_ a: SharedAnswer) {
        hits &+= 1
        bytesServed &+= UInt64(a.pieces.reduce(0) { $0 + $1.utf8.count })
    }

    private func ended(_ a: SharedAnswer, ttlSeconds: Int, model: String) {
        // Only a whole answer is kept: not an error, nor one cut short because every reader left.
        // It stays in the table until the cache has it, so an identical request in between is
        // served from memory rather than missing the entry being written.
        guard !a.fromCache, a.error == nil, a.finish != nil, !a.pieces.isEmpty else {
            if inFlight[a.key] === a { inFlight[a.key] = nil }
            return
        }
        let u = a.usage.map { TokenUsage(promptTokens: $0.promptTokens, completionTokens: $0.completionTokens, totalTokens: $0.totalTokens) }
        let entry = CachedAnswer(pieces: a.pieces, finishReason: a.finish?.value, usage: u)
        store.store(key: a.key.digest, model: model, answer: entry, ttlSeconds: ttlSeconds) { [self] r in
            if inFlight[a.key] === a { inFlight[a.key] = nil }
            if case .failure(let e) = r {
                logger.warn("response cache write failed", [("error", .string(e.description))])
                return
            }
            stores &+= 1
            recent.put(a.key, entry, lifetimeMillis: Int64(ttlSeconds) * 1000, now: monotonicNanos())
            storedSinceEviction = true
            scheduleEviction()
        }
    }

    /// Expired entries and those beyond `CHAT_CACHE_MAX_BYTES` go, at most once per interval.
    private func scheduleEviction() {
        guard evictionTimer == nil else { return }
        evictionTimer = loop.schedule(afterMillis: Self.evictionIntervalMillis) { [weak self] in
            guard let self else { return }
            self.evictionTimer = nil
            guard self.storedSinceEviction else { return }
            self.storedSinceEviction = false
            self.store.evict(maxBytes: self.maxBytes) { [weak self] r in
                if case .failure(let e) = r { self?.logger.warn("response cache eviction failed", [("error", .string(e.description))]) }
            }
        }
    }

    var counts: CacheCounts {
        CacheCounts(hits: hits, misses: misses, joins: joins, bytesServed: bytesServed, stores: stores)
    }

    func stop() {
        if let t = evictionTimer { loop.cancel(t); evictionTimer = nil }
    }
}
