import Reactor
import Storage

/// Who is calling: the owner id their conversations and usage are kept under, and the database
/// key with its limits (nil for keys from CHAT_API_KEYS, which have none).
struct Caller {
    let owner: String
    let key: DirectoryKey?

    var limits: KeyLimits? { key?.record.limits }
}

/// A database key as a worker holds it: the record, and what its limits need on every request
/// worked out once (subjects, the budget in picodollars, the limit windows once looked up).
final class DirectoryKey {
    let record: KeyRecord
    let budgetPico: Int64?
    let rpmSubject: String
    let tpmSubject: String
    let usdSubject: String
    let streamsSubject: String
    /// `RateLimit-Policy`, fixed for the key (nil without rpm or tpm).
    let policyHeader: String?
    var rpm: LimitWindow?
    var tpm: LimitWindow?
    var usd: LimitWindow?

    init(_ record: KeyRecord) {
        self.record = record
        let l = record.limits
        budgetPico = l.budgetPeriod == nil ? nil : l.budgetUSD.flatMap(USD.pico)
        rpmSubject = "k:\(record.id):rpm"
        tpmSubject = "k:\(record.id):tpm"
        usdSubject = "k:\(record.id):usd"
        streamsSubject = "k:\(record.id):streams"
        var policies: [String] = []
        if let r = l.rpm { policies.append("\"requests\";q=\(r);w=60") }
        if let t = l.tpm { policies.append("\"tokens\";q=\(t);w=60") }
        policyHeader = policies.isEmpty ? nil : policies.joined(separator: ", ")
    }
}

/// One worker's copy of the keys kept in PostgreSQL, indexed by the SHA-256 of the secret.
///
/// Polled every `refreshMillis` with "rows changed since version V" (a tiny indexed query), so a
/// key created, rotated or revoked on any instance takes effect on every instance within that
/// interval. A secret not in the copy waits for one extra refresh before it is refused, so a key
/// created a moment ago works at once; those forced refreshes are coalesced and spaced, so a flood
/// of wrong keys costs the database at most one query per `minForcedGapMillis` per worker.
final class KeyDirectory {
    private let loop: EventLoop
    private let store: KeyStore
    private let logger: Logger
    let refreshMillis: Int64
    private let minForcedGapMillis: Int64 = 50
    private var byHash: [String: DirectoryKey] = [:]
    private var hashByID: [String: String] = [:]
    private var version: Int64 = 0
    private var inFlight = false
    /// When the refresh now in flight (or the last one) was sent, in loop nanoseconds.
    private var lastSentAt: UInt64 = 0
    /// When the newest answered refresh was sent: a lookup for a request that arrived before it is final.
    private(set) var lastAnsweredSentAt: UInt64 = 0
    private var waiters: [() -> Void] = []
    private var timer: TimerID?
    private var forcedTimer: TimerID?
    private var stopped = false

    init(loop: EventLoop, store: KeyStore, logger: Logger, refreshMillis: Int64 = 200) {
        self.loop = loop
        self.store = store
        self.logger = logger
        self.refreshMillis = refreshMillis
    }

    func start() {
        refresh()
    }

    func stop() {
        stopped = true
        if let t = timer { loop.cancel(t); timer = nil }
        if let t = forcedTimer { loop.cancel(t); forcedTimer = nil }
        let w = waiters
        waiters = []
        for f in w { f() }
    }

    func lookup(hash: String) -> DirectoryKey? { byHash[hash] }

    /// True when the copy was refreshed from a query sent after `nanos`, so a miss is final.
    func isCurrent(since nanos: UInt64) -> Bool { lastAnsweredSentAt >= nanos || stopped }

    /// Runs `then` once a refresh sent from now on has been answered (or failed).
    func afterNextRefresh(_ then: @escaping () -> Void) {
        waiters.append(then)
        guard !inFlight, forcedTimer == nil else { return }
        let sinceLast = Int64((monotonicNanos() &- lastSentAt) / 1_000_000)
        if sinceLast >= minForcedGapMillis {
            refresh()
        } else {
            forcedTimer = loop.schedule(afterMillis: minForcedGapMillis - sinceLast) { [weak self] in
                self?.forcedTimer = nil
                self?.refresh()
            }
        }
    }

    private func refresh() {
        guard !inFlight, !stopped else { return }
        if let t = timer { loop.cancel(t); timer = nil }
        inFlight = true
        let sentAt = monotonicNanos()
        lastSentAt = sentAt
        let w = waiters
        waiters = []
        store.changes(since: version) { [weak self] result in
            guard let self else { return }
            self.inFlight = false
            switch result {
            case .success(let rows):
                for k in rows { self.apply(k) }
                self.lastAnsweredSentAt = sentAt
            case .failure(let e):
                // The copy stays as it was: keys keep working while the database is away.
                if ChatService.isTransient(e) == false {
                    self.logger.error("could not read API keys", [("error", .string(e.description))])
                }
                self.lastAnsweredSentAt = sentAt
            }
            for f in w { f() }
            if !self.waiters.isEmpty { self.refresh() } else { self.scheduleNext() }
        }
    }

    private func scheduleNext() {
        guard !stopped, timer == nil else { return }
        timer = loop.schedule(afterMillis: refreshMillis) { [weak self] in
            self?.timer = nil
            self?.refresh()
        }
    }

    private func apply(_ k: KeyRecord) {
        if let old = hashByID[k.id], old != k.keyHash { byHash[old] = nil }
        byHash[k.keyHash] = DirectoryKey(k)
        hashByID[k.id] = k.keyHash
        version = max(version, k.version)
    }

    var count: Int { byHash.count }
}
