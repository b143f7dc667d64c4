import Reactor

/// One row of the usage ledger's increments: what one worker saw for a key, UTC day, model and
/// deployment since its last flush.
public struct UsageIncrement: Sendable, Equatable {
    public var owner: String
    /// Days since 1970-01-01 (UTC).
    public var day: Int
    public var model: String
    public var deployment: String
    public var requests: Int64 = 0
    public var promptTokens: Int64 = 0
    public var completionTokens: Int64 = 0
    /// Cost in picodollars (1e-12 USD): whole numbers, so sums are exact.
    public var costPico: Int64 = 0
    public var estimatedRequests: Int64 = 0

    public init(owner: String, day: Int, model: String, deployment: String) {
        self.owner = owner
        self.day = day
        self.model = model
        self.deployment = deployment
    }

    /// Adds another increment's counts (same key); a cost past Int64 stays at its largest.
    public mutating func add(requests: Int64, promptTokens: Int64, completionTokens: Int64, costPico: Int64, estimatedRequests: Int64) {
        self.requests += requests
        self.promptTokens += promptTokens
        self.completionTokens += completionTokens
        let (cost, overflow) = self.costPico.addingReportingOverflow(costPico)
        self.costPico = overflow ? Int64.max : cost
        self.estimatedRequests += estimatedRequests
    }
}

/// A ledger row read back: totals for a day and model (and key, for the admin view).
public struct UsageRow: Sendable, Equatable {
    public var owner: String
    public var keyName: String?
    public var day: String
    public var model: String
    public var requests: Int64
    public var promptTokens: Int64
    public var completionTokens: Int64
    /// Exact decimal text (numeric).
    public var costUSD: String
    public var estimatedRequests: Int64
}

/// The usage ledger: batched upserts, and reads by key and date range.
public struct UsageStore {
    public let pool: PGPool

    public init(pool: PGPool) { self.pool = pool }

    /// Adds a batch of increments in one statement.
    public func add(_ rows: [UsageIncrement], completion: @escaping (Result<Void, StoreError>) -> Void) {
        guard !rows.isEmpty else { completion(.success(())); return }
        let params: [String?] = [
            PGArray.literal(rows.map(\.owner)), PGArray.literal(rows.map { Int64($0.day) }), PGArray.literal(rows.map(\.model)),
            PGArray.literal(rows.map(\.deployment)), PGArray.literal(rows.map(\.requests)), PGArray.literal(rows.map(\.promptTokens)),
            PGArray.literal(rows.map(\.completionTokens)), PGArray.literal(rows.map(\.costPico)),
            PGArray.literal(rows.map(\.estimatedRequests)),
        ]
        pool.query(Self.upsert, params, prepared: "cr_usage_add") { r in
            completion(r.map { _ in () }.mapError(StoreError.database))
        }
    }

    /// Totals by day and model, oldest first, for one owner (nil: every owner, by key too).
    /// `from` and `to` are `YYYY-MM-DD`, inclusive.
    public func totals(owner: String?, from: String, to: String, completion: @escaping (Result<[UsageRow], StoreError>) -> Void) {
        pool.query("""
            SELECT u.owner, k.name AS key_name, to_char(u.day, 'YYYY-MM-DD') AS day, u.model, sum(u.requests) AS requests,
                   sum(u.prompt_tokens) AS prompt_tokens, sum(u.completion_tokens) AS completion_tokens,
                   round(sum(u.cost_usd), 12)::text AS cost_usd, sum(u.estimated_requests) AS estimated_requests
            FROM usage_daily u LEFT JOIN api_keys k ON k.id::text = u.owner
            WHERE ($1::text IS NULL OR u.owner = $1) AND u.day BETWEEN $2::date AND $3::date
            GROUP BY u.owner, k.name, u.day, u.model
            ORDER BY u.day, u.owner, u.model
            """, [owner, from, to], prepared: owner == nil ? "cr_usage_all" : "cr_usage_owner") { r in
            completion(r.mapError(StoreError.database).map { res in
                (0..<res.rows.count).map { i in
                    UsageRow(owner: res.value(i, "owner") ?? "", keyName: res.value(i, "key_name"), day: res.value(i, "day") ?? "",
                             model: res.value(i, "model") ?? "", requests: Int64(res.value(i, "requests") ?? "") ?? 0,
                             promptTokens: Int64(res.value(i, "prompt_tokens") ?? "") ?? 0,
                             completionTokens: Int64(res.value(i, "completion_tokens") ?? "") ?? 0,
                             costUSD: res.value(i, "cost_usd") ?? "0",
                             estimatedRequests: Int64(res.value(i, "estimated_requests") ?? "") ?? 0)
                }
            })
        }
    }

    static let upsert = """
        INSERT INTO usage_daily AS u (owner, day, model, deployment, requests, prompt_tokens, completion_tokens, cost_usd,
                                      estimated_requests)
        SELECT o, date '1970-01-01' + d::int, m, dep, r, p, c, cost / 1000000000000.0, e
        FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],
                    $8::numeric[], $9::bigint[]) AS x(o, d, m, dep, r, p, c, cost, e)
        ON CONFLICT (owner, day, model, deployment) DO UPDATE SET
            requests = u.requests + excluded.requests,
            prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,
            completion_tokens = u.completion_tokens + excluded.completion_tokens,
            cost_usd = u.cost_usd + excluded.cost_usd,
            estimated_requests = u.estimated_requests + excluded.estimated_requests
        """
}

/// One operation on a shared limit window (see `chatrelay_windows` in LimitSchema).
public struct WindowOp: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case claim, charge, release, read
    }

    public var subject: String
    public var kind: Kind
    public var amount: Int64
    public var limit: Int64
    /// > 0: a window of that many milliseconds from its first use; -1 the UTC day; -2 the UTC month.
    public var windowMs: Int64
    public var windowID: Int64

    public init(subject: String, kind: Kind, amount: Int64, limit: Int64, windowMs: Int64, windowID: Int64 = 0) {
        self.subject = subject
        self.kind = kind
        self.amount = amount
        self.limit = limit
        self.windowMs = windowMs
        self.windowID = windowID
    }
}

/// A window as the database left it after an operation.
public struct WindowState: Sendable, Equatable {
    public var subject: String
    public var granted: Int64
    public var used: Int64
    public var resetMs: Int64
    public var windowID: Int64
}

/// The shared counters behind every limit: one statement per batch of operations.
public struct LimitStore {
    public let pool: PGPool
    public let writer: String

    public init(pool: PGPool, writer: String) {
        self.pool = pool
        self.writer = writer
    }

    /// Runs `ops` (sorted by subject here, so concurrent callers lock rows in one order).
    public func windows(_ ops: [WindowOp], completion: @escaping (Result<[WindowState], StoreError>) -> Void) {
        guard !ops.isEmpty else { completion(.success([])); return }
        let sorted = ops.sorted { $0.subject < $1.subject }
        let params: [String?] = [
            PGArray.literal(sorted.map(\.subject)), PGArray.literal(sorted.map(\.kind.rawValue)),
            PGArray.literal(sorted.map(\.amount)), PGArray.literal(sorted.map(\.limit)), PGArray.literal(sorted.map(\.windowMs)),
            PGArray.literal(sorted.map(\.windowID)),
        ]
        pool.query("SELECT * FROM chatrelay_windows($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::bigint[], $6::bigint[])",
                   params, prepared: "cr_windows") { r in
            completion(r.mapError(StoreError.database).map { res in
                (0..<res.rows.count).compactMap { i in
                    guard let s = res.value(i, "r_subject") else { return nil }
                    return WindowState(subject: s, granted: Self.int(res.value(i, "r_granted")), used: Self.int(res.value(i, "r_used")),
                                       resetMs: Self.int(res.value(i, "r_reset_ms")), windowID: Self.int(res.value(i, "r_window_id")))
                }
            })
        }
    }

    /// Claims (positive delta) or returns (negative) concurrent-stream slots for this instance.
    public func slots(_ changes: [(subject: String, delta: Int, limit: Int)],
                      completion: @escaping (Result<[(subject: String, granted: Int, held: Int)], StoreError>) -> Void) {
        guard !changes.isEmpty else { completion(.success([])); return }
        let sorted = changes.sorted { $0.subject < $1.subject }
        let params: [String?] = [PGArray.literal(sorted.map(\.subject)), writer, PGArray.literal(sorted.map { Int64($0.delta) }),
                                 PGArray.literal(sorted.map { Int64($0.limit) }), ChatStore.writerPrefix]
        pool.query("SELECT * FROM chatrelay_slots($1::text[], $2, $3::int[], $4::int[], $5)", params, prepared: "cr_slots") { r in
            completion(r.mapError(StoreError.database).map { res in
                (0..<res.rows.count).compactMap { i in
                    guard let s = res.value(i, "r_subject") else { return nil }
                    return (s, Int(Self.int(res.value(i, "r_granted"))), Int(Self.int(res.value(i, "r_held"))))
                }
            })
        }
    }

    /// numeric text ("12", "12.0000") to a whole number.
    static func int(_ s: String?) -> Int64 {
        guard let s else { return 0 }
        if let v = Int64(s) { return v }
        return Int64(s.split(separator: ".").first ?? "0") ?? 0
    }
}
