import Reactor
import Storage

/// What one finished turn used, as billed: the provider's counts when it sent them, else counts
/// made here (`estimated`).
struct TurnUsage {
    var owner: String
    var model: String
    var deployment: String
    var promptTokens: Int64
    var completionTokens: Int64
    var costPico: Int64
    var estimated: Bool
}

/// One worker's usage since its last flush, summed per key, UTC day, model and deployment, and
/// written to the ledger in one statement a second (not once per turn, let alone per token).
/// Increments that could not be written (database away) stay and go with the next flush.
final class UsageLedger {
    private struct Key: Hashable {
        let owner: String
        let day: Int
        let model: String
        let deployment: String
    }

    /// Totals per public model since start, for /metrics.
    struct ModelTotals: Sendable {
        var requests: UInt64 = 0
        var promptTokens: UInt64 = 0
        var completionTokens: UInt64 = 0
        var costPico: UInt64 = 0
        var estimated: UInt64 = 0
    }

    private let loop: EventLoop
    private let store: UsageStore
    private let logger: Logger
    private var pending: [Key: UsageIncrement] = [:]
    private var timer: TimerID?
    private var inFlight = false
    let flushMillis: Int64
    /// Past this many distinct rows waiting (a long outage), new rows are dropped and counted.
    let maxPendingRows = 100_000
    private(set) var droppedRows: UInt64 = 0
    private(set) var byModel: [String: ModelTotals] = [:]

    init(loop: EventLoop, store: UsageStore, logger: Logger, flushMillis: Int64 = 1_000) {
        self.loop = loop
        self.store = store
        self.logger = logger
        self.flushMillis = flushMillis
    }

    func record(_ u: TurnUsage) {
        var t = byModel[u.model] ?? ModelTotals()
        t.requests &+= 1
        t.promptTokens &+= UInt64(max(0, u.promptTokens))
        t.completionTokens &+= UInt64(max(0, u.completionTokens))
        t.costPico &+= UInt64(max(0, u.costPico))
        if u.estimated { t.estimated &+= 1 }
        byModel[u.model] = t

        let day = Int(wallClockMillis() / 86_400_000)
        let key = Key(owner: u.owner, day: day, model: u.model, deployment: u.deployment)
        var row: UsageIncrement
        if let r = pending[key] {
            row = r
        } else {
            guard pending.count < maxPendingRows else { droppedRows &+= 1; return }
            row = UsageIncrement(owner: u.owner, day: day, model: u.model, deployment: u.deployment)
        }
        row.add(requests: 1, promptTokens: u.promptTokens, completionTokens: u.completionTokens, costPico: u.costPico,
                estimatedRequests: u.estimated ? 1 : 0)
        pending[key] = row
        scheduleFlush()
    }

    private func scheduleFlush() {
        guard timer == nil else { return }
        timer = loop.schedule(afterMillis: flushMillis) { [weak self] in
            self?.timer = nil
            self?.flush()
        }
    }

    private var flushWaiters: [() -> Void] = []

    /// Writes what is pending; `done` once everything recorded before the call has been answered
    /// (written, or failed and kept for the next flush).
    func flush(_ done: (() -> Void)? = nil) {
        if let done { flushWaiters.append(done) }
        guard !inFlight else { return }  // runs again when the write in flight is answered
        if let t = timer { loop.cancel(t); timer = nil }
        guard !pending.isEmpty else {
            let w = flushWaiters
            flushWaiters = []
            for f in w { f() }
            return
        }
        let batch = pending
        let waiters = flushWaiters
        flushWaiters = []
        pending = [:]
        inFlight = true
        store.add(Array(batch.values)) { [weak self] r in
            guard let self else { for f in waiters { f() }; return }
            self.inFlight = false
            if case .failure(let e) = r {
                self.putBack(batch)
                if !ChatService.isTransient(e) {
                    self.logger.error("could not write usage", [("error", .string(e.description))])
                }
            }
            for f in waiters { f() }
            if !self.flushWaiters.isEmpty {
                self.flush()
            } else if !self.pending.isEmpty {
                self.scheduleFlush()
            }
        }
    }

    /// A batch that could not be written, merged back with what came since.
    private func putBack(_ batch: [Key: UsageIncrement]) {
        for (k, v) in batch {
            guard var now = pending[k] else { pending[k] = v; continue }
            now.add(requests: v.requests, promptTokens: v.promptTokens, completionTokens: v.completionTokens, costPico: v.costPico,
                    estimatedRequests: v.estimatedRequests)
            pending[k] = now
        }
    }

    var hasPending: Bool { !pending.isEmpty || inFlight }
}
