import Reactor

/// An answer kept in the response cache: its text as the pieces it streamed in, so a hit
/// replays the same token events a live answer sent.
public struct CachedAnswer: Sendable, Equatable {
    public var pieces: [String]
    public var finishReason: String?
    public var usage: TokenUsage?
    /// How long the entry has left, as read (lookups fill it; 0 otherwise).
    public var remainingMillis: Int64 = 0

    public init(pieces: [String], finishReason: String?, usage: TokenUsage?) {
        self.pieces = pieces
        self.finishReason = finishReason
        self.usage = usage
    }

    /// What an entry counts against the cache's size cap: its text's UTF-8 bytes.
    public var sizeBytes: Int { pieces.reduce(0) { $0 + $1.utf8.count } }
}

/// Migration 10: the response cache, keyed by the SHA-256 of the canonical request, the mark on
/// answers served from it, and the keys that turn it on.
enum CacheSchema {
    static let statements = [
        """
        CREATE TABLE response_cache (
            key bytea PRIMARY KEY,
            model text NOT NULL,
            pieces text[] NOT NULL,
            finish_reason text,
            prompt_tokens int,
            completion_tokens int,
            size_bytes int NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL)
        """,
        "CREATE INDEX response_cache_created_idx ON response_cache (created_at)",
        "ALTER TABLE messages ADD COLUMN cached boolean NOT NULL DEFAULT false",
        // A key whose deterministic requests use the cache, and for how long.
        "ALTER TABLE api_keys ADD COLUMN cache_ttl_s int CHECK (cache_ttl_s > 0)",
    ]
}

/// The response cache in PostgreSQL, shared by every instance (docs/API.md, "Response cache").
public struct CacheStore {
    public let pool: PGPool

    public init(pool: PGPool) { self.pool = pool }

    /// The live entry for `key` (32 bytes), or nil.
    public func lookup(key: [UInt8], completion: @escaping (Result<CachedAnswer?, StoreError>) -> Void) {
        pool.query("""
            SELECT pieces, finish_reason, prompt_tokens, completion_tokens,
                   (extract(epoch FROM expires_at - now()) * 1000)::bigint AS remaining_ms
            FROM response_cache WHERE key = $1::bytea AND expires_at > now()
            """, [Self.bytea(key)], prepared: "cr_cache_get") { r in
            completion(r.mapError(StoreError.database).map { res in
                guard res.rows.count == 1, let pieces = res.value(0, "pieces").flatMap(PGArray.parseText) else { return nil }
                let p = res.value(0, "prompt_tokens").flatMap { Int($0) }, c = res.value(0, "completion_tokens").flatMap { Int($0) }
                let usage = p == nil && c == nil ? nil
                    : TokenUsage(promptTokens: p, completionTokens: c, totalTokens: p.flatMap { p in c.map { p + $0 } })
                var answer = CachedAnswer(pieces: pieces, finishReason: res.value(0, "finish_reason"), usage: usage)
                answer.remainingMillis = res.value(0, "remaining_ms").flatMap { Int64($0) } ?? 0
                return answer
            })
        }
    }

    /// Keeps `answer` for `ttlSeconds`, replacing an older entry for the same key.
    public func store(key: [UInt8], model: String, answer: CachedAnswer, ttlSeconds: Int,
                      completion: @escaping (Result<Void, StoreError>) -> Void) {
        let params: [String?] = [Self.bytea(key), model, PGArray.literal(answer.pieces), answer.finishReason,
                                 answer.usage?.promptTokens.map(String.init), answer.usage?.completionTokens.map(String.init),
                                 String(answer.sizeBytes), String(ttlSeconds)]
        pool.query("""
            INSERT INTO response_cache (key, model, pieces, finish_reason, prompt_tokens, completion_tokens, size_bytes, expires_at)
            VALUES ($1::bytea, $2, $3::text[], $4, $5::int, $6::int, $7::int, now() + $8::int * interval '1 second')
            ON CONFLICT (key) DO UPDATE SET model = excluded.model, pieces = excluded.pieces,
                finish_reason = excluded.finish_reason, prompt_tokens = excluded.prompt_tokens,
                completion_tokens = excluded.completion_tokens, size_bytes = excluded.size_bytes,
                created_at = now(), expires_at = excluded.expires_at
            """, params, prepared: "cr_cache_put") { r in
            completion(r.map { _ in () }.mapError(StoreError.database))
        }
    }

    /// Drops expired entries, then the oldest until the rest fit in `maxBytes`; completes with
    /// how many went.
    public func evict(maxBytes: Int, completion: @escaping (Result<Int, StoreError>) -> Void) {
        pool.query("""
            WITH expired AS (DELETE FROM response_cache WHERE expires_at <= now() RETURNING key),
            over AS (
                DELETE FROM response_cache WHERE key IN (
                    -- The expired rows are going in the same statement (one snapshot): not counted.
                    SELECT key FROM (SELECT key, sum(size_bytes) OVER (ORDER BY created_at DESC, key) AS upto
                                     FROM response_cache WHERE expires_at > now()) x
                    WHERE upto > $1::bigint)
                RETURNING key)
            SELECT (SELECT count(*) FROM expired) + (SELECT count(*) FROM over) AS n
            """, [String(maxBytes)], prepared: "cr_cache_evict") { r in
            completion(r.map { $0.value(0, "n").flatMap { Int($0) } ?? 0 }.mapError(StoreError.database))
        }
    }

    static func bytea(_ b: [UInt8]) -> String {
        var s = "\\x"
        for byte in b {
            s.append(hexDigit(byte >> 4))
            s.append(hexDigit(byte & 0x0f))
        }
        return s
    }
}
