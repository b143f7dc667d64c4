import Reactor

/// A client key kept in the database: its limits and allowed models. The secret itself is never
/// stored, only its SHA-256 (hex); `prefix` is its first characters, to tell keys apart in lists.
public struct KeyRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var prefix: String
    public var keyHash: String
    public var limits: KeyLimits
    public var createdAt: String
    public var rotatedAt: String?
    public var revokedAt: String?
    /// Grows with every change to the row; instances ask for rows newer than the last they saw.
    public var version: Int64

    public var isRevoked: Bool { revokedAt != nil }
}

/// What a key may do. nil means no limit.
public struct KeyLimits: Sendable, Equatable {
    public var rpm: Int?
    public var tpm: Int?
    public var maxStreams: Int?
    /// A plain decimal in USD ("12.5"), exact as given.
    public var budgetUSD: String?
    public var budgetPeriod: BudgetPeriod?
    /// Public model names (or catalog wildcard names) the key may use; nil allows all.
    public var models: [String]?
    /// Not a limit: this key's requests with temperature 0 use the response cache, kept this long.
    public var cacheTTLSeconds: Int?

    public init(rpm: Int? = nil, tpm: Int? = nil, maxStreams: Int? = nil, budgetUSD: String? = nil,
                budgetPeriod: BudgetPeriod? = nil, models: [String]? = nil, cacheTTLSeconds: Int? = nil) {
        self.cacheTTLSeconds = cacheTTLSeconds
        self.rpm = rpm
        self.tpm = tpm
        self.maxStreams = maxStreams
        self.budgetUSD = budgetUSD
        self.budgetPeriod = budgetPeriod
        self.models = models
    }

    public var isUnlimited: Bool { rpm == nil && tpm == nil && maxStreams == nil && budgetUSD == nil }
}

public enum BudgetPeriod: String, Sendable, Equatable {
    case day, month
}

/// Keys in PostgreSQL: create, list, revoke, rotate, and the change feed instances poll.
public struct KeyStore {
    public let pool: PGPool

    public init(pool: PGPool) { self.pool = pool }

    /// The owner id of a database key: its row id, so conversations and usage survive a rotation.
    public static func owner(ofKeyID id: String) -> String { id }

    public func create(name: String, keyHash: String, prefix: String, limits: KeyLimits,
                       completion: @escaping (Result<KeyRecord, StoreError>) -> Void) {
        let l = limits
        let params: [String?] = [makeUUIDv4(), name, keyHash, prefix, l.rpm.map(String.init), l.tpm.map(String.init),
                                 l.maxStreams.map(String.init), l.budgetUSD, l.budgetPeriod?.rawValue,
                                 l.models.map(PGArray.literal), l.cacheTTLSeconds.map(String.init)]
        pool.query("""
            INSERT INTO api_keys (id, name, key_hash, key_prefix, rpm, tpm, max_streams, budget_usd, budget_period, models,
                                  cache_ttl_s)
            VALUES ($1::uuid, $2, $3, $4, $5::int, $6::bigint, $7::int, $8::numeric, $9, $10::text[], $11::int)
            RETURNING \(Self.columns)
            """, params) { r in
            completion(r.mapError(StoreError.database).flatMap { res in
                Self.records(res).first.map { .success($0) } ?? .failure(.database(.client("no row returned")))
            })
        }
    }

    /// Every key, newest first (revoked ones too, marked).
    public func list(completion: @escaping (Result<[KeyRecord], StoreError>) -> Void) {
        pool.query("SELECT \(Self.columns) FROM api_keys ORDER BY created_at DESC, id") { r in
            completion(r.map(Self.records).mapError(StoreError.database))
        }
    }

    /// The key whose id is `idOrName`, else the one (not revoked) with that name.
    public func find(_ idOrName: String, completion: @escaping (Result<KeyRecord?, StoreError>) -> Void) {
        let id: String? = isValidUUID(idOrName) ? idOrName : nil
        pool.query("""
            SELECT \(Self.columns) FROM api_keys WHERE ($1::uuid IS NOT NULL AND id = $1::uuid)
               OR ($1::uuid IS NULL AND name = $2 AND revoked_at IS NULL)
            ORDER BY created_at DESC LIMIT 2
            """, [id, idOrName]) { r in
            completion(r.mapError(StoreError.database).flatMap { res in
                let found = Self.records(res)
                if found.count > 1 { return .failure(.invalidArgument("more than one key is named '\(idOrName)': use its id")) }
                return .success(found.first)
            })
        }
    }

    /// Revokes the key; nil when there is no such key. Revoking twice keeps the first time.
    public func revoke(id: String, completion: @escaping (Result<KeyRecord?, StoreError>) -> Void) {
        guard isValidUUID(id) else { completion(.success(nil)); return }
        pool.query("""
            UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()), version = nextval('api_keys_version')
            WHERE id = $1::uuid RETURNING \(Self.columns)
            """, [id]) { r in
            completion(r.map { Self.records($0).first }.mapError(StoreError.database))
        }
    }

    /// Gives the key a new secret (the old one stops working); nil when there is no such key or
    /// it is revoked.
    public func rotate(id: String, keyHash: String, prefix: String, completion: @escaping (Result<KeyRecord?, StoreError>) -> Void) {
        guard isValidUUID(id) else { completion(.success(nil)); return }
        pool.query("""
            UPDATE api_keys SET key_hash = $2, key_prefix = $3, rotated_at = now(), version = nextval('api_keys_version')
            WHERE id = $1::uuid AND revoked_at IS NULL RETURNING \(Self.columns)
            """, [id, keyHash, prefix]) { r in
            completion(r.map { Self.records($0).first }.mapError(StoreError.database))
        }
    }

    /// Rows changed after `version` (all of them for 0), in version order.
    public func changes(since version: Int64, completion: @escaping (Result<[KeyRecord], StoreError>) -> Void) {
        pool.query("SELECT \(Self.columns) FROM api_keys WHERE version > $1::bigint ORDER BY version",
                   [String(version)], prepared: "cr_keys_changes") { r in
            completion(r.map(Self.records).mapError(StoreError.database))
        }
    }

    static let columns = """
        id::text AS id, name, key_hash, key_prefix, rpm, tpm, max_streams, budget_usd::text AS budget_usd, budget_period,
        array_to_string(models, ',') AS models, models IS NOT NULL AS has_models, cache_ttl_s,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at,
        to_char(rotated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS rotated_at,
        to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS revoked_at, version
        """

    static func records(_ res: PGResult) -> [KeyRecord] {
        (0..<res.rows.count).compactMap { i in
            guard let id = res.value(i, "id"), let hash = res.value(i, "key_hash"),
                  let version = res.value(i, "version").flatMap({ Int64($0) }) else { return nil }
            var limits = KeyLimits(rpm: res.value(i, "rpm").flatMap { Int($0) }, tpm: res.value(i, "tpm").flatMap { Int($0) },
                                   maxStreams: res.value(i, "max_streams").flatMap { Int($0) }, budgetUSD: res.value(i, "budget_usd"),
                                   budgetPeriod: res.value(i, "budget_period").flatMap(BudgetPeriod.init(rawValue:)),
                                   cacheTTLSeconds: res.value(i, "cache_ttl_s").flatMap { Int($0) })
            if res.value(i, "has_models") == "t" {
                limits.models = (res.value(i, "models") ?? "").split(separator: ",").map(String.init)
            }
            return KeyRecord(id: id, name: res.value(i, "name") ?? "", prefix: res.value(i, "key_prefix") ?? "", keyHash: hash,
                             limits: limits, createdAt: res.value(i, "created_at") ?? "", rotatedAt: res.value(i, "rotated_at"),
                             revokedAt: res.value(i, "revoked_at"), version: version)
        }
    }
}

/// PostgreSQL array literals for text parameters (`{"a","b"}`), for statements that take a whole
/// batch as arrays in one round trip.
public enum PGArray {
    public static func literal(_ items: [String]) -> String {
        // Built as bytes: a progress write sends a thousand answers' text this way four times a second.
        var out: [UInt8] = []
        out.reserveCapacity(items.reduce(2) { $0 + $1.utf8.count + 3 })
        out.append(UInt8(ascii: "{"))
        for (i, s) in items.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            for b in s.utf8 {
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                out.append(b)
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    public static func literal(_ items: [Int64]) -> String {
        "{" + items.map(String.init).joined(separator: ",") + "}"
    }

    /// A one-dimensional text[] as PostgreSQL prints it: `{a,"b c","x\"y"}` (elements are quoted
    /// when they are empty or hold a space, comma, brace, quote or backslash; `\` escapes inside
    /// quotes). nil for anything else, NULL elements included.
    public static func parseText(_ s: String) -> [String]? {
        let b = Array(s.utf8)
        guard b.count >= 2, b.first == UInt8(ascii: "{"), b.last == UInt8(ascii: "}") else { return nil }
        if b.count == 2 { return [] }
        var out: [String] = []
        var i = 1
        let end = b.count - 1
        while i < end {
            var item: [UInt8] = []
            if b[i] == UInt8(ascii: "\"") {
                i += 1
                while i < end, b[i] != UInt8(ascii: "\"") {
                    if b[i] == UInt8(ascii: "\\") { i += 1; guard i < end else { return nil } }
                    item.append(b[i])
                    i += 1
                }
                guard i < end else { return nil }
                i += 1  // the closing quote
            } else {
                while i < end, b[i] != UInt8(ascii: ",") { item.append(b[i]); i += 1 }
                if item == Array("NULL".utf8) { return nil }
            }
            out.append(String(decoding: item, as: UTF8.self))
            if i < end {
                guard b[i] == UInt8(ascii: ",") else { return nil }
                i += 1
                if i == end { return nil }  // a trailing comma
            }
        }
        return out
    }
}
