import Reactor

/// The schema, as numbered migrations. Append new ones; never edit an applied one.
public enum Migrations {
    /// One schema step: plain SQL statements run inside a PL/pgSQL block.
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        public let statements: [String]
    }

    /// Arbitrary constant for `pg_advisory_xact_lock`: instances starting together migrate one at a time.
    public static let lockKey: Int64 = 0x4368_6174_5265  // "ChatRe"

    public static let all: [Migration] = [
        Migration(version: 1, name: "conversations and messages", statements: [
            """
            CREATE TABLE conversations (
                id uuid PRIMARY KEY,
                owner_key_hash text NOT NULL,
                title text,
                system_prompt text,
                model text,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now())
            """,
            // Newest-first keyset pagination per owner: WHERE owner = $1 AND (updated_at, id) < (…) ORDER BY … DESC.
            "CREATE INDEX conversations_owner_updated_idx ON conversations (owner_key_hash, updated_at DESC, id DESC)",
            """
            CREATE TABLE messages (
                id uuid PRIMARY KEY,
                conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
                role text NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
                content text NOT NULL DEFAULT '',
                model text,
                provider text,
                status text NOT NULL DEFAULT 'complete'
                    CHECK (status IN ('complete', 'streaming', 'error', 'cancelled', 'interrupted')),
                finish_reason text,
                prompt_tokens int,
                completion_tokens int,
                total_tokens int,
                ttft_ms int,
                latency_ms int,
                error text,
                created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                updated_at timestamptz NOT NULL DEFAULT clock_timestamp())
            """,
            "CREATE INDEX messages_conversation_created_idx ON messages (conversation_id, created_at, id)",
        ]),
        // Which running instance streams an answer, so one instance's start-up sweep leaves the
        // answers other live instances are still streaming alone.
        Migration(version: 2, name: "messages.writer", statements: [
            "ALTER TABLE messages ADD COLUMN writer text",
        ]),
        // The catalog deployment that answered (its id in models.yaml) and the id it was sent
        // upstream; `model` holds the public name the client asked for.
        Migration(version: 3, name: "messages.deployment and upstream_model", statements: [
            "ALTER TABLE messages ADD COLUMN deployment text",
            "ALTER TABLE messages ADD COLUMN upstream_model text",
        ]),
        // Every upstream attempt of the answer (deployment, outcome, status, milliseconds).
        Migration(version: 4, name: "messages.attempts", statements: [
            "ALTER TABLE messages ADD COLUMN attempts jsonb",
        ]),
        // Keys with limits, the usage ledger, and the counters every instance's limits share
        // (docs/limits.md).
        Migration(version: 5, name: "api keys, usage ledger and limit windows", statements: LimitSchema.statements),
        // The text of answers in progress, one row per worker and interval holding every answer
        // that grew (answer id → new text), for clients resuming on another instance.
        Migration(version: 6, name: "answer_progress", statements: [
            """
            CREATE TABLE answer_progress (
                writer text NOT NULL,
                worker int NOT NULL,
                seq bigint NOT NULL,
                at timestamptz NOT NULL DEFAULT clock_timestamp(),
                deltas jsonb NOT NULL,
                PRIMARY KEY (writer, worker, seq))
            """,
            "CREATE INDEX answer_progress_writer_at_idx ON answer_progress (writer, at)",
        ]),
        // Two parallel text arrays instead of a JSON object, stored uncompressed: building and
        // compressing a thousand-key jsonb four times a second per worker cost more than the rest of
        // the progress write (bench/RESULTS.md). The rows are ephemeral, so the old ones go.
        Migration(version: 7, name: "answer_progress as arrays", statements: [
            "TRUNCATE answer_progress",
            "ALTER TABLE answer_progress DROP COLUMN deltas, ADD COLUMN ids text[] NOT NULL, ADD COLUMN texts text[] NOT NULL",
            "ALTER TABLE answer_progress ALTER COLUMN ids SET STORAGE EXTERNAL, ALTER COLUMN texts SET STORAGE EXTERNAL",
        ]),
        // Answer ids as uuid (16 bytes, not 37 characters: most of a row was ids), and the ones whose
        // text replaces what came before (after a restart) in their own, usually empty, array.
        Migration(version: 8, name: "answer_progress ids as uuid", statements: [
            "TRUNCATE answer_progress",
            "ALTER TABLE answer_progress ALTER COLUMN ids TYPE uuid[] USING ids::uuid[], ADD COLUMN replaced uuid[] NOT NULL DEFAULT '{}'",
        ]),
        // Several models answering one turn (docs/API.md, "Several models in one turn"): one row per
        // run, keyed by its answer's message id; the turn's user message says which run the next
        // turn's history continues from.
        Migration(version: 9, name: "model_runs", statements: RunSchema.statements),
        // Answers kept for identical requests (docs/API.md, "Response cache").
        Migration(version: 10, name: "response_cache", statements: CacheSchema.statements),
    ]

    /// The whole migration as one pipeline, which is one implicit transaction (docs/reactor-notes.md D6): the
    /// advisory lock is taken first and held until the Sync commits, so concurrent starters queue on
    /// it; each step checks `schema_migrations` itself, so the batch needs no client-side branching
    /// and costs one round trip. A failure rolls everything back.
    static func batch() -> [PGQuery] {
        var q: [PGQuery] = [
            PGQuery("SELECT pg_advisory_xact_lock(\(lockKey))"),
            PGQuery("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version int PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """),
        ]
        for m in all {
            let body = m.statements.joined(separator: ";\n")
            q.append(PGQuery("""
                DO $migration$
                BEGIN
                    IF NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = \(m.version)) THEN
                        \(body);
                        INSERT INTO schema_migrations (version) VALUES (\(m.version));
                    END IF;
                END
                $migration$
                """))
        }
        q.append(PGQuery("SELECT coalesce(max(version), 0) AS version FROM schema_migrations"))
        return q
    }

    /// Applies every missing migration; completes with the schema version now in place.
    public static func apply(pool: PGPool, completion: @escaping (Result<Int, StoreError>) -> Void) {
        pool.pipeline(batch()) { results in
            for r in results {
                if case .failure(let e) = r, e != .aborted { completion(.failure(.database(e))); return }
            }
            guard case .success(let last)? = results.last, let v = last.rows.first?.first ?? nil, let version = Int(v) else {
                completion(.failure(.database(.client("migration returned no version"))))
                return
            }
            completion(.success(version))
        }
    }
}
