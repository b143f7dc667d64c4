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
///
/// Each worker writes ONE row per interval (`answer_progress`: parallel arrays of answer ids and
/// the text each gained since the worker's last write; ids also in `replaced` start over with
/// that text, after a restart): the cost of saving progress does not grow with the number of answers or their
/// length, unlike rewriting each answer's row. A reader puts an answer's text together from the
/// rows of its writer since the answer began. Rows older than the writer's oldest answer in
/// progress are deleted by the writer; the final text is the message's own.
public struct ProgressStore {
    public let pool: PGPool
    /// The channel every instance `LISTEN`s to; the payload is answer ids, comma-separated.
    public static let channel = "chatrelay_progress"

    public init(pool: PGPool) { self.pool = pool }

    /// Stores one batch (row `seq` of worker `worker` of instance `writer`) and notifies the ids
    /// in it and `ended` (answers stored as final since the last write); with `pruneBelow`, also
    /// deletes this worker's rows before that `seq`. One round trip, committed without waiting for
    /// the WAL flush (the answer's own final write waits).
    public func write(writer: String, worker: Int, seq: Int64, _ deltas: [ProgressDelta], ended: [String], pruneBelow: Int64?,
                      completion: @escaping (Result<Void, StoreError>) -> Void) {
        guard !deltas.isEmpty || !ended.isEmpty || pruneBelow != nil else { completion(.success(())); return }
        let texts = deltas.map(\.text)
        var queries = [PGQuery(SQL.commitWithoutFlush, prepared: "cr_async_commit")]
        if !deltas.isEmpty {
            queries.append(PGQuery(Self.insertSQL, [writer, String(worker), String(seq), PGArray.literal(deltas.map(\.id)),
                                                    PGArray.literal(texts), PGArray.literal(deltas.filter(\.replace).map(\.id))],
                                   prepared: "cr_progress_insert"))
        }
        let notified = deltas.map(\.id) + ended
        if !notified.isEmpty {
            queries.append(PGQuery(Self.notifySQL, [PGArray.literal(notified)], prepared: "cr_progress_notify"))
        }
        if let below = pruneBelow {
            queries.append(PGQuery("DELETE FROM answer_progress WHERE writer = $1 AND worker = $2::int AND seq < $3::bigint",
                                   [writer, String(worker), String(below)], prepared: "cr_progress_prune"))
        }
        pool.pipeline(queries) { results in
            for r in results { if case .failure(let e) = r { completion(.failure(.database(e))); return } }
            completion(.success(()))
        }
    }

    /// The answer `id` if it belongs to `owner` (nil: missing, another owner's, or not an answer).
    public func answer(owner: String, id: String, completion: @escaping (Result<AnswerProgress?, StoreError>) -> Void) {
        guard isValidUUID(id) else { completion(.success(nil)); return }
        read([id.lowercased()], owner: owner) { r in completion(r.map(\.first)) }
    }

    /// Several answers by id (already authorized by the caller).
    public func answers(_ ids: [String], completion: @escaping (Result<[AnswerProgress], StoreError>) -> Void) {
        read(ids, owner: nil, completion: completion)
    }

    /// The messages, and for those still streaming the progress rows that hold their text: one
    /// round trip.
    private func read(_ ids: [String], owner: String?, completion: @escaping (Result<[AnswerProgress], StoreError>) -> Void) {
        let list = PGArray.literal(ids)
        pool.pipeline([PGQuery(Self.selectSQL, [list, owner], prepared: "cr_progress_messages"),
                       PGQuery(Self.deltasSQL, [list, owner], prepared: "cr_progress_deltas")]) { results in
            guard results.count == 2 else { completion(.failure(.database(.client("short pipeline")))); return }
            switch (results[0], results[1]) {
            case (.failure(let e), _), (_, .failure(let e)):
                completion(.failure(.database(e)))
            case (.success(let m), .success(let d)):
                var answers = Self.rows(m)
                var text: [String: String] = [:]
                for i in 0..<d.rows.count {
                    guard let id = d.value(i, "id") else { continue }
                    if let r = d.value(i, "r") { text[id] = r }
                    if let a = d.value(i, "d") { text[id, default: ""] += a }
                }
                for i in answers.indices where answers[i].status == .streaming {
                    answers[i].content = text[answers[i].id] ?? answers[i].content
                }
                completion(.success(answers))
            }
        }
    }

    /// Of `ids`, the answers still `streaming` whose instance is gone (no session left in
    /// `pg_stat_activity`) become `interrupted`, with the text their progress rows hold; completes
    /// with their ids.
    public func markInterrupted(_ ids: [String], completion: @escaping (Result<[String], StoreError>) -> Void) {
        pool.query("""
            WITH gone AS (
                SELECT m.id FROM messages m
                WHERE m.id = ANY($1::uuid[]) AND m.status = 'streaming'
                  AND (m.writer IS NULL OR m.writer NOT IN (
                        SELECT substr(application_name, length($2) + 1) FROM pg_stat_activity
                        WHERE starts_with(application_name, $2)))
                FOR UPDATE),
            texts AS (
                SELECT g.id, \(Self.assembled("g.id::text")) AS content FROM gone g),
            u AS (
                UPDATE messages m SET status = 'interrupted', content = coalesce(t.content, m.content), updated_at = now()
                FROM texts t WHERE m.id = t.id
                RETURNING m.id),
            \(SQL.runsInterrupted(from: "u"))
            SELECT id::text AS id FROM u
            """, [PGArray.literal(ids), ChatStore.writerPrefix], prepared: "cr_progress_sweep") { r in
            completion(r.map { res in (0..<res.rows.count).compactMap { res.value($0, "id") } }.mapError(StoreError.database))
        }
    }

    /// SQL for the text of answer `id` (an expression) from its writer's progress rows.
    static func assembled(_ id: String) -> String {
        """
        (SELECT string_agg(p.texts[array_position(p.ids, mm.id)], '' ORDER BY p.worker, p.seq)
         FROM messages mm JOIN answer_progress p ON p.writer = mm.writer AND p.at >= mm.created_at - interval '2 seconds'
         WHERE mm.id = \(id)::uuid AND mm.id = ANY(p.ids)
           AND p.seq >= coalesce((SELECT max(q.seq) FROM answer_progress q WHERE q.writer = mm.writer AND q.worker = p.worker
                                  AND mm.id = ANY(q.replaced)), 0))
        """
    }

    static let insertSQL = """
        INSERT INTO answer_progress (writer, worker, seq, ids, texts, replaced)
        VALUES ($1, $2::int, $3::bigint, $4::uuid[], $5::text[], $6::uuid[])
        """

    /// 150 ids per notification: a payload must stay under 8000 bytes.
    static let notifySQL = """
        SELECT pg_notify('\(channel)', string_agg(id, ',')) FROM (
            SELECT id, (row_number() OVER ()) / 150 AS g FROM unnest($1::text[]) AS id) t
        GROUP BY g
        """

    static let selectSQL = """
        SELECT m.id::text AS id, m.conversation_id::text AS conversation_id, m.content, m.status, m.finish_reason,
               m.prompt_tokens, m.completion_tokens, m.total_tokens, m.error, m.model, m.deployment, m.ttft_ms, m.latency_ms
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE m.id = ANY($1::uuid[]) AND m.role = 'assistant' AND ($2::text IS NULL OR c.owner_key_hash = $2)
        """

    /// Rows in the order they were written; a replacing piece (`r`) resets the text.
    static let deltasSQL = """
        SELECT m.id::text AS id, CASE WHEN m.id = ANY(p.replaced) THEN p.texts[array_position(p.ids, m.id)] END AS r,
               CASE WHEN m.id = ANY(p.replaced) THEN NULL ELSE p.texts[array_position(p.ids, m.id)] END AS d
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        JOIN answer_progress p ON p.writer = m.writer AND p.at >= m.created_at - interval '2 seconds'
        WHERE m.id = ANY($1::uuid[]) AND m.status = 'streaming' AND ($2::text IS NULL OR c.owner_key_hash = $2)
          AND m.id = ANY(p.ids)
        ORDER BY m.id, p.worker, p.seq
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
