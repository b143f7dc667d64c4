import Reactor

/// An answer as a resumed stream needs it: its text so far and whether it has ended.
public struct AnswerProgress: Sendable, Equatable {
    public var id: String
    public var conversationID: String
    public var content: String
    public var status: MessageStatus
    public var finishReason: String?
    public var usage: TokenUsage?
    public var error: String?
    public var model: String?
    public var deployment: String?
    public var ttftMs: Int?
    public var latencyMs: Int?

    public init(id: String, conversationID: String, content: String, status: MessageStatus, finishReason: String? = nil,
                usage: TokenUsage? = nil, error: String? = nil, model: String? = nil, deployment: String? = nil,
                ttftMs: Int? = nil, latencyMs: Int? = nil) {
        self.ttftMs = ttftMs
        self.latencyMs = latencyMs
        self.id = id
        self.conversationID = conversationID
        self.content = content
        self.status = status
        self.finishReason = finishReason
        self.usage = usage
        self.error = error
        self.model = model
        self.deployment = deployment
    }
}

/// One answer's new text for a progress write: appended to what is stored, or (`replace`, after
/// a restart on another deployment) replacing it.
public struct ProgressDelta: Sendable, Equatable {
    public var id: String
    public var text: String
    public var replace: Bool

    public init(id: String, text: String, replace: Bool) {
        self.id = id
        self.text = text
        self.replace = replace
    }
}

/// The answers in progress, saved in batches so another instance can resume them
/// (docs/API.md, "Resuming a stream"), and the `NOTIFY` that tells them.
public struct ProgressStore {
    public let pool: PGPool
    /// The channel every instance `LISTEN`s to; the payload is answer ids, comma-separated.
    public static let channel = "chatrelay_progress"

    public init(pool: PGPool) { self.pool = pool }

    /// Appends (or replaces) the text of every answer in `deltas` still `streaming`, and notifies
    /// their ids and `ended` (answers stored as final since the last write) on the channel: one
    /// statement, committed without waiting for its WAL flush (progress is rewritten by the
    /// answer's own final write, which waits).
    public func write(_ deltas: [ProgressDelta], ended: [String], completion: @escaping (Result<Void, StoreError>) -> Void) {
        guard !deltas.isEmpty || !ended.isEmpty else { completion(.success(())); return }
        let params: [String?] = [PGArray.literal(deltas.map(\.id)), PGArray.literal(deltas.map(\.text)),
                                 "{" + deltas.map { $0.replace ? "t" : "f" }.joined(separator: ",") + "}", PGArray.literal(ended)]
        pool.pipeline([PGQuery(SQL.commitWithoutFlush, prepared: "cr_async_commit"),
                       PGQuery(Self.writeSQL, params, prepared: "cr_progress")]) { results in
            if case .failure(let e)? = results.last { completion(.failure(.database(e))) } else { completion(.success(())) }
        }
    }

    /// The answer `id` if it belongs to `owner` (nil: missing, another owner's, or not an answer).
    public func answer(owner: String, id: String, completion: @escaping (Result<AnswerProgress?, StoreError>) -> Void) {
        guard isValidUUID(id) else { completion(.success(nil)); return }
        pool.query(Self.selectSQL + " AND c.owner_key_hash = $2", [PGArray.literal([id]), owner], prepared: "cr_progress_one") { r in
            completion(r.map { Self.rows($0).first }.mapError(StoreError.database))
        }
    }

    /// Several answers by id (already authorized by the caller).
    public func answers(_ ids: [String], completion: @escaping (Result<[AnswerProgress], StoreError>) -> Void) {
        pool.query(Self.selectSQL, [PGArray.literal(ids)], prepared: "cr_progress_many") { r in
            completion(r.map(Self.rows).mapError(StoreError.database))
        }
    }

    /// Of `ids`, the answers still `streaming` whose instance is gone (no session left in
    /// `pg_stat_activity`) become `interrupted`; completes with their ids.
    public func markInterrupted(_ ids: [String], completion: @escaping (Result<[String], StoreError>) -> Void) {
        pool.query("""
            UPDATE messages SET status = 'interrupted', updated_at = now()
            WHERE id = ANY($1::uuid[]) AND status = 'streaming'
              AND (writer IS NULL OR writer NOT IN (
                    SELECT substr(application_name, length($2) + 1) FROM pg_stat_activity
                    WHERE starts_with(application_name, $2)))
            RETURNING id::text AS id
            """, [PGArray.literal(ids), ChatStore.writerPrefix], prepared: "cr_progress_sweep") { r in
            completion(r.map { res in (0..<res.rows.count).compactMap { res.value($0, "id") } }.mapError(StoreError.database))
        }
    }

    static let writeSQL = """
        WITH u AS (
            UPDATE messages m SET content = CASE WHEN x.r THEN x.d ELSE m.content || x.d END, updated_at = now()
            FROM unnest($1::uuid[], $2::text[], $3::bool[]) AS x(id, d, r)
            WHERE m.id = x.id AND m.status = 'streaming'
            RETURNING m.id::text AS id),
        ids AS (SELECT id FROM u UNION ALL SELECT unnest($4::text[])),
        numbered AS (SELECT id, (row_number() OVER ()) / 150 AS g FROM ids)
        SELECT pg_notify('\(channel)', string_agg(id, ',')) FROM numbered GROUP BY g
        """

    static let selectSQL = """
        SELECT m.id::text AS id, m.conversation_id::text AS conversation_id, m.content, m.status, m.finish_reason,
               m.prompt_tokens, m.completion_tokens, m.total_tokens, m.error, m.model, m.deployment, m.ttft_ms, m.latency_ms
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE m.id = ANY($1::uuid[]) AND m.role = 'assistant'
        """

    static func rows(_ res: PGResult) -> [AnswerProgress] {
        (0..<res.rows.count).compactMap { i in
            guard let id = res.value(i, "id"), let status = res.value(i, "status").flatMap(MessageStatus.init(rawValue:)) else { return nil }
            let p = res.value(i, "prompt_tokens").flatMap { Int($0) }
            let c = res.value(i, "completion_tokens").flatMap { Int($0) }
            let t = res.value(i, "total_tokens").flatMap { Int($0) }
            return AnswerProgress(id: id, conversationID: res.value(i, "conversation_id") ?? "", content: res.value(i, "content") ?? "",
                                  status: status, finishReason: res.value(i, "finish_reason"),
                                  usage: p == nil && c == nil ? nil : TokenUsage(promptTokens: p, completionTokens: c, totalTokens: t),
                                  error: res.value(i, "error"), model: res.value(i, "model"), deployment: res.value(i, "deployment"),
                                  ttftMs: res.value(i, "ttft_ms").flatMap { Int($0) }, latencyMs: res.value(i, "latency_ms").flatMap { Int($0) })
        }
    }
}
