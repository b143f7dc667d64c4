import Reactor

/// Conversations and messages in PostgreSQL, scoped by owner (the SHA-256 hex of a client key).
///
/// Every statement filters by owner, so another key's conversation looks exactly like a missing
/// one. Everything is callback-style on the pool's loop; each completion runs once, on the loop.
/// Hot statements are named prepared statements (prepared once per connection).
/// A chat turn costs two round trips: `beginTurn` (one statement) and `finalizeAssistantMessage`.
public final class ChatStore {
    public let pool: PGPool
    /// Largest page `listConversations` returns.
    public let maxPageSize = 100

    /// This instance's id, stamped on the answers it streams. Its pool connections carry it in
    /// their `application_name` (`writerApplicationName`), which is how other instances' start-up
    /// sweeps see that it is alive.
    public let writer: String?

    public init(pool: PGPool, writer: String? = nil) {
        self.pool = pool
        self.writer = writer
    }

    /// The `application_name` of the pool connections of the instance `writer`.
    public static func writerApplicationName(_ writer: String) -> String { writerPrefix + writer }
    static let writerPrefix = "chatrelay/"

    // MARK: Start-up

    /// Applies migrations, then marks messages left `streaming` by a crash as `interrupted`.
    /// Run once at start-up, before serving. Completes with (schema version, rows swept).
    public func startUp(completion: @escaping (Result<(schemaVersion: Int, interrupted: Int), StoreError>) -> Void) {
        Migrations.apply(pool: pool) { [self] r in
            switch r {
            case .failure(let e): completion(.failure(e))
            case .success(let version):
                sweepInterrupted { s in completion(s.map { (version, $0) }) }
            }
        }
    }

    /// Messages still `streaming` whose instance is gone (no session of it in `pg_stat_activity`)
    /// become `interrupted`; completes with how many. Answers another live instance is streaming
    /// are left alone.
    public func sweepInterrupted(completion: @escaping (Result<Int, StoreError>) -> Void) {
        pool.query(SQL.sweepInterrupted, [Self.writerPrefix]) { r in
            completion(r.map { $0.value(0, "n").flatMap { Int($0) } ?? 0 }.mapError(StoreError.database))
        }
    }

    // MARK: Conversations

    /// Creates an empty conversation.
    public func createConversation(owner: String, title: String?, system: String?, model: String?,
                                   completion: @escaping (Result<Conversation, StoreError>) -> Void) {
        pool.query(SQL.insertConversation, [makeUUIDv4(), owner, title, system, model], prepared: "cr_conv_insert") { r in
            completion(r.mapError(StoreError.database).flatMap { res in
                guard let c = Self.conversation(res, 0) else { return .failure(.database(.client("no row returned"))) }
                return .success(c)
            })
        }
    }

    /// Newest first by (updated_at, id). `cursor` is the `nextCursor` of the previous page.
    public func listConversations(owner: String, limit: Int, cursor: String?,
                                  completion: @escaping (Result<ConversationPage, StoreError>) -> Void) {
        guard limit >= 1 && limit <= maxPageSize else {
            completion(.failure(.invalidArgument("limit must be between 1 and \(maxPageSize)")))
            return
        }
        var micros: String? = nil
        var after: String? = nil
        if let cursor {
            guard let c = Cursor.decode(cursor) else { completion(.failure(.invalidCursor)); return }
            micros = String(c.micros)
            after = c.id
        }
        pool.query(SQL.listConversations, [owner, micros, after, String(limit + 1)], prepared: "cr_conv_list") { r in
            completion(r.mapError(StoreError.database).map { res in
                var items: [ConversationSummary] = []
                var keys: [Int64] = []
                for i in 0..<min(res.rows.count, limit) {
                    guard let id = res.value(i, "id"), let k = res.value(i, "k").flatMap({ Int64($0) }) else { continue }
                    items.append(ConversationSummary(
                        id: id, title: res.value(i, "title"), model: res.value(i, "model"),
                        createdAt: res.value(i, "created_at") ?? "", updatedAt: res.value(i, "updated_at") ?? "",
                        messageCount: res.value(i, "message_count").flatMap { Int($0) } ?? 0))
                    keys.append(k)
                }
                var next: String? = nil
                if res.rows.count > limit, let last = items.last, let k = keys.last {
                    next = Cursor.encode(micros: k, id: last.id)
                }
                return ConversationPage(items: items, nextCursor: next)
            })
        }
    }

    /// The conversation with its messages oldest first; nil when missing or another owner's.
    public func getConversation(owner: String, id: String,
                                completion: @escaping (Result<ConversationDetail?, StoreError>) -> Void) {
        guard isValidUUID(id) else { completion(.success(nil)); return }
        pool.pipeline([
            PGQuery(SQL.selectConversation, [id, owner], prepared: "cr_conv_get"),
            PGQuery(SQL.selectMessages, [id, owner, nil], prepared: "cr_msg_history"),
        ]) { results in
            guard results.count == 2 else { completion(.failure(.database(.client("short pipeline")))); return }
            switch (results[0], results[1]) {
            case (.failure(let e), _), (_, .failure(let e)):
                completion(.failure(.database(e)))
            case (.success(let c), .success(let m)):
                guard let conv = Self.conversation(c, 0) else { completion(.success(nil)); return }
                completion(.success(ConversationDetail(conversation: conv, messages: Self.messages(m))))
            }
        }
    }

    /// Deletes a conversation and (by cascade) its messages; false when missing or another owner's.
    public func deleteConversation(owner: String, id: String, completion: @escaping (Result<Bool, StoreError>) -> Void) {
        guard isValidUUID(id) else { completion(.success(false)); return }
        pool.query("DELETE FROM conversations WHERE id = $1::uuid AND owner_key_hash = $2", [id, owner],
                   prepared: "cr_conv_delete") { r in
            completion(r.map { $0.affectedRows > 0 }.mapError(StoreError.database))
        }
    }

    /// Number of messages in a conversation; nil when missing or another owner's.
    public func messageCount(owner: String, conversationID: String, completion: @escaping (Result<Int?, StoreError>) -> Void) {
        guard isValidUUID(conversationID) else { completion(.success(nil)); return }
        pool.query("""
            SELECT count(m.id) AS n FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id
            WHERE c.id = $1::uuid AND c.owner_key_hash = $2 GROUP BY c.id
            """, [conversationID, owner], prepared: "cr_msg_count") { r in
            completion(r.mapError(StoreError.database).map { res in res.value(0, "n").flatMap { Int($0) } })
        }
    }

    // MARK: Messages

    /// Stores a user message; `.notFound` when the conversation is missing or another owner's.
    public func appendUserMessage(owner: String, conversationID: String, text: String,
                                  completion: @escaping (Result<String, StoreError>) -> Void) {
        let id = makeUUIDv4()
        insertMessage(SQL.insertUserMessage, [id, conversationID, text, owner], prepared: "cr_msg_user", id: id, completion: completion)
    }

    /// Opens the assistant message with status `streaming` (written when the upstream stream starts).
    public func openAssistantMessage(owner: String, conversationID: String, model: String?, provider: String?,
                                     completion: @escaping (Result<String, StoreError>) -> Void) {
        let id = makeUUIDv4()
        insertMessage(SQL.insertAssistantMessage, [id, conversationID, owner, model, provider],
                      prepared: "cr_msg_assistant", id: id, completion: completion)
    }

    private func insertMessage(_ sql: String, _ params: [String?], prepared: String, id: String,
                               completion: @escaping (Result<String, StoreError>) -> Void) {
        guard let conv = params[1], isValidUUID(conv) else { completion(.failure(.notFound)); return }
        pool.query(sql, params, prepared: prepared) { r in
            completion(r.mapError(StoreError.database).flatMap { $0.affectedRows == 1 ? .success(id) : .failure(.notFound) })
        }
    }

    /// Writes the final text, status, usage and timings of an assistant message; false when the
    /// message is missing or belongs to another owner. With `turn`, rows the database lost since
    /// `beginTurn` (its commit does not wait for the flush) are written again: only when the
    /// message is missing AND a pool connection was lost since, so a conversation the user deleted
    /// meanwhile stays deleted.
    public func finalizeAssistantMessage(owner: String, id: String, text: String, status: MessageStatus,
                                         finishReason: String?, usage: TokenUsage?, ttftMs: Int?, latencyMs: Int?,
                                         error: String?, turn: TurnStart? = nil, model: String? = nil,
                                         deployment: String? = nil, upstreamModel: String? = nil, attempts: String? = nil,
                                         cached: Bool = false, completion: @escaping (Result<Bool, StoreError>) -> Void) {
        guard isValidUUID(id) else { completion(.success(false)); return }
        let finals: [String?] = [text, status.rawValue, finishReason,
                                 usage?.promptTokens.map(String.init), usage?.completionTokens.map(String.init),
                                 usage?.totalTokens.map(String.init), ttftMs.map(String.init), latencyMs.map(String.init), error,
                                 deployment, upstreamModel, model, attempts, cached ? "true" : nil]
        // Not group-committed, measured: answers finalized together send their `done` together,
        // their clients' next turns start together and stream in lockstep, and the token bursts
        // that follow cost far more per-token delay (p99 15 → 60-100 ms at 500 streams) than
        // the shared flush saves.
        pool.pipeline([PGQuery(SQL.finalizeMessage, [id, owner] + finals, prepared: "cr_msg_finalize")]) { [self] results in
            switch results.first ?? .failure(.client("no result")) {
            case .failure(let e): completion(.failure(.database(e)))
            case .success(let res) where res.affectedRows > 0: completion(.success(true))
            case .success:
                guard let turn, turn.assistantMessageID == id, pool.connectionLosses != turn.lossMark,
                      let user = turn.userMessage else { completion(.success(false)); return }
                let c = turn.conversation
                let params: [String?] = [c.id, owner, c.title, c.systemPrompt, c.model, user.id, user.content, id,
                                         turn.model, turn.provider] + finals
                pool.query(SQL.restoreTurn, params, prepared: "cr_turn_restore") { r in
                    completion(r.map { $0.affectedRows > 0 }.mapError(StoreError.database))
                }
            }
        }
    }

    /// One chat turn's writes and reads in ONE round trip and one statement: creates the
    /// conversation (when `conversationID` is nil) or touches the existing one, stores the user
    /// message, opens the assistant message (`streaming`) and loads the history.
    /// `.notFound` when `conversationID` is missing or another owner's (then nothing is written).
    /// A new conversation's title defaults to the first 80 characters of the message.
    ///
    /// The transaction commits without waiting for its WAL flush (`synchronous_commit = off` for
    /// it alone): the rows are visible at once, and become durable with the answer's own commit,
    /// which waits for the flush of everything before it. That flush would otherwise sit between
    /// the client's request and the upstream call. If the database loses them (a crash within
    /// ~0.6 s), `finalizeAssistantMessage` writes the turn again, so the answer is not lost.
    public func beginTurn(owner: String, conversationID: String?, title: String? = nil, system: String?,
                          userText: String, model: String?, provider: String?, deployment: String? = nil,
                          upstreamModel: String? = nil, history budget: HistoryBudget = .standard,
                          completion: @escaping (Result<TurnStart, StoreError>) -> Void) {
        if let c = conversationID, !isValidUUID(c) { completion(.failure(.notFound)); return }
        let isNew = conversationID == nil
        let convID = conversationID?.lowercased() ?? makeUUIDv4()
        let userID = makeUUIDv4()
        let assistantID = makeUUIDv4()
        let turn: PGQuery = isNew
            ? PGQuery(SQL.beginNewTurn, [convID, owner, title ?? Self.defaultTitle(userText), system, model,
                                         userID, userText, assistantID, provider, writer, deployment, upstreamModel],
                      prepared: "cr_turn_new")
            : PGQuery(SQL.beginNextTurn, [convID, owner, model, userID, userText, assistantID, provider, writer,
                                          deployment, upstreamModel, String(budget.messages), String(budget.characters)],
                      prepared: "cr_turn_next")
        let lossMark = pool.connectionLosses
        // Turns starting together share one transaction when the pool is busy (group commit).
        pool.pipeline([PGQuery(SQL.commitWithoutFlush, prepared: "cr_async_commit"), turn], groupCommit: true) { results in
            guard results.count == 2 else { completion(.failure(.database(.client("short pipeline")))); return }
            let res: PGResult
            switch results[1] {
            case .failure(let e): completion(.failure(.database(e))); return
            case .success(let r): res = r
            }
            guard let conv = Self.conversation(res, 0) else { completion(.failure(.notFound)); return }
            let history = Self.turnHistory(res, conversation: conv, isNew: isNew, userID: userID, userText: userText)
            completion(.success(TurnStart(conversation: conv, isNewConversation: isNew, userMessageID: userID,
                                          assistantMessageID: assistantID, history: history, lossMark: lossMark,
                                          model: model, provider: provider, deployment: deployment,
                                          upstreamModel: upstreamModel)))
        }
    }

    // MARK: Row mapping

    static func defaultTitle(_ text: String) -> String {
        let line = text.split(whereSeparator: { $0 == "\n" }).first.map(String.init) ?? text
        return line.count > 80 ? String(line.prefix(80)) + "…" : line
    }

    static func conversation(_ r: PGResult, _ i: Int) -> Conversation? {
        guard i < r.rows.count, let id = r.value(i, "id") else { return nil }
        return Conversation(id: id, title: r.value(i, "title"), systemPrompt: r.value(i, "system_prompt"),
                            model: r.value(i, "model"), createdAt: r.value(i, "created_at") ?? "",
                            updatedAt: r.value(i, "updated_at") ?? "")
    }

    static func messages(_ r: PGResult) -> [StoredMessage] {
        (0..<r.rows.count).compactMap { i in
            guard let id = r.value(i, "id"), let conv = r.value(i, "conversation_id"),
                  let role = r.value(i, "role").flatMap(MessageRole.init(rawValue:)),
                  let status = r.value(i, "status").flatMap(MessageStatus.init(rawValue:)) else { return nil }
            let p = r.value(i, "prompt_tokens").flatMap { Int($0) }
            let c = r.value(i, "completion_tokens").flatMap { Int($0) }
            let t = r.value(i, "total_tokens").flatMap { Int($0) }
            return StoredMessage(
                id: id, conversationID: conv, role: role, content: r.value(i, "content") ?? "",
                model: r.value(i, "model"), provider: r.value(i, "provider"), status: status,
                finishReason: r.value(i, "finish_reason"),
                usage: (p == nil && c == nil && t == nil) ? nil : TokenUsage(promptTokens: p, completionTokens: c, totalTokens: t),
                ttftMs: r.value(i, "ttft_ms").flatMap { Int($0) }, latencyMs: r.value(i, "latency_ms").flatMap { Int($0) },
                error: r.value(i, "error"), createdAt: r.value(i, "created_at") ?? "",
                deployment: r.value(i, "deployment"), upstreamModel: r.value(i, "upstream_model"),
                attemptsJSON: r.value(i, "attempts"), run: run(r, i), cached: r.value(i, "cached") == "t")
        }
    }
}

extension ChatStore {
    /// A turn start's history: the earlier messages its statement returned (none for a new
    /// conversation), then the new user message.
    static func turnHistory(_ res: PGResult, conversation conv: Conversation, isNew: Bool, userID: String,
                            userText: String) -> [StoredMessage] {
        var history = isNew ? [] : historyRows(res)
        history.append(StoredMessage(
            id: userID, conversationID: conv.id, role: .user, content: userText, model: nil, provider: nil,
            status: .complete, finishReason: nil, usage: nil, ttftMs: nil, latencyMs: nil, error: nil,
            createdAt: res.value(0, "user_created_at") ?? ""))
        return history
    }

    /// The run a message answers, from `SQL.selectMessages`'s `run_*` columns; nil for a
    /// single-model answer.
    static func run(_ r: PGResult, _ i: Int) -> RunInfo? {
        guard let turn = r.value(i, "run_turn"), let position = r.value(i, "run_position").flatMap({ Int($0) }),
              let mode = r.value(i, "run_mode").flatMap(RunMode.init(rawValue:)),
              let status = r.value(i, "run_status").flatMap(MessageStatus.init(rawValue:)) else { return nil }
        return RunInfo(turnID: turn, position: position, mode: mode, status: status, selected: r.value(i, "run_selected") == "t",
                       costUSD: r.value(i, "run_cost"))
    }

    /// The earlier messages `SQL.beginNextTurn` returns beside the conversation (columns `m_*`;
    /// NULL when the conversation has none yet).
    static func historyRows(_ r: PGResult) -> [StoredMessage] {
        guard let cid = r.column("m_id"), let crole = r.column("m_role"), let ccontent = r.column("m_content"),
              let cstatus = r.column("m_status"), let ccreated = r.column("m_created_at"), let cconv = r.column("id") else { return [] }
        return r.rows.compactMap { row in
            guard let id = row[cid], let conv = row[cconv], let role = row[crole].flatMap(MessageRole.init(rawValue:)),
                  let status = row[cstatus].flatMap(MessageStatus.init(rawValue:)) else { return nil }
            return StoredMessage(id: id, conversationID: conv, role: role, content: row[ccontent] ?? "", model: nil,
                                 provider: nil, status: status, finishReason: nil, usage: nil, ttftMs: nil,
                                 latencyMs: nil, error: nil, createdAt: row[ccreated] ?? "")
        }
    }
}

/// The SQL, in one place. Timestamps leave the database as ISO-8601 UTC with milliseconds.
enum SQL {
    static func iso(_ column: String) -> String {
        "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    }

    static let conversationColumns = """
        id::text AS id, title, system_prompt, model, \(iso("created_at")) AS created_at, \(iso("updated_at")) AS updated_at
        """

    static let insertConversation = """
        INSERT INTO conversations (id, owner_key_hash, title, system_prompt, model)
        VALUES ($1::uuid, $2, $3, $4, $5) RETURNING \(conversationColumns)
        """

    static let selectConversation = """
        SELECT \(conversationColumns) FROM conversations WHERE id = $1::uuid AND owner_key_hash = $2
        """

    /// $2 (µs since epoch) and $3 (id) are the keyset position of the previous page's last row, or NULL.
    static let listConversations = """
        SELECT c.id::text AS id, c.title, c.model, \(iso("c.created_at")) AS created_at, \(iso("c.updated_at")) AS updated_at,
               (extract(epoch FROM c.updated_at) * 1000000)::bigint AS k,
               (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count
        FROM conversations c
        WHERE c.owner_key_hash = $1
          AND ($2::bigint IS NULL
               OR (c.updated_at, c.id) < (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::uuid))
        ORDER BY c.updated_at DESC, c.id DESC
        LIMIT $4::int
        """

    /// A message's created_at is kept strictly after the conversation's latest one, so a user message
    /// and the assistant row opened in the same transaction keep their order under (created_at, id).
    static func insertMessage(role: String, content: String, status: String, model: String, provider: String,
                              conversation: String, owner: String) -> String {
        """
        INSERT INTO messages (id, conversation_id, role, content, status, model, provider, created_at, updated_at)
        SELECT $1::uuid, c.id, '\(role)', \(content), '\(status)', \(model), \(provider), t.ts, t.ts
        FROM conversations c,
             LATERAL (SELECT \(afterLatestMessage(of: "c.id")) AS ts) t
        WHERE c.id = \(conversation)::uuid AND c.owner_key_hash = \(owner)
        """
    }

    static let insertUserMessage = insertMessage(role: "user", content: "$3::text", status: "complete", model: "NULL",
                                                 provider: "NULL", conversation: "$2", owner: "$4")

    static let insertAssistantMessage = insertMessage(role: "assistant", content: "''", status: "streaming", model: "$4::text",
                                                      provider: "$5::text", conversation: "$2", owner: "$3")

    /// $1: the application_name prefix of ChatRelay instances. Rows without a writer (older
    /// versions) are always swept.
    static let sweepInterrupted = """
        WITH s AS (
            UPDATE messages SET status = 'interrupted', updated_at = now()
            WHERE status = 'streaming'
              AND (writer IS NULL OR writer NOT IN (
                    SELECT substr(application_name, length($1) + 1) FROM pg_stat_activity
                    WHERE starts_with(application_name, $1)))
            RETURNING id),
        \(runsInterrupted(from: "s"))
        SELECT count(*) AS n FROM s
        """

    /// The CTE `r` marking the model runs of the answers in `from` (column `id`) interrupted too.
    static func runsInterrupted(from: String) -> String {
        "r AS (UPDATE model_runs mr SET status = 'interrupted', finished_at = now() FROM \(from) WHERE mr.id = \(from).id)"
    }

    /// The time for a conversation's next message: now, or just after its latest message when the
    /// clock reads earlier, so (created_at, id) keeps the order.
    static func afterLatestMessage(of conversation: String) -> String {
        """
        greatest(clock_timestamp(), (SELECT max(m.created_at) + interval '1 microsecond'
                                     FROM messages m WHERE m.conversation_id = \(conversation)))
        """
    }

    /// The CTE `n` of a turn start: the user message (complete) at `t.ts` and the assistant
    /// message (streaming) 1 µs after it, in conversation `conversation`, selected `from`.
    static func openTurnRows(user: String, text: String, assistant: String, conversation: String, model: String,
                             provider: String, writer: String, deployment: String, upstream: String, from: String) -> String {
        """
        n AS (
            INSERT INTO messages (id, conversation_id, role, content, status, model, provider, writer, deployment,
                                  upstream_model, created_at, updated_at)
            SELECT \(user)::uuid, \(conversation), 'user', \(text)::text, 'complete', NULL, NULL, NULL, NULL, NULL, t.ts, t.ts
            FROM \(from)
            UNION ALL
            SELECT \(assistant)::uuid, \(conversation), 'assistant', '', 'streaming', \(model)::text, \(provider)::text,
                   \(writer)::text, \(deployment)::text, \(upstream)::text, t.ts + interval '1 microsecond',
                   t.ts + interval '1 microsecond' FROM \(from))
        """
    }

    /// Makes the current (implicit) transaction commit without waiting for its WAL flush.
    static let commitWithoutFlush = "SELECT set_config('synchronous_commit', 'off', true)"

    /// A new conversation's first turn: $1 conversation, $2 owner, $3 title, $4 system, $5 model,
    /// $6 user message id, $7 its text, $8 assistant message id, $9 provider, $10 writer,
    /// $11 deployment, $12 upstream model. Returns the
    /// conversation and the user message's time. The data-modifying CTEs all run, referenced or not.
    static let beginNewTurn = """
        WITH c AS (
            INSERT INTO conversations (id, owner_key_hash, title, system_prompt, model)
            VALUES ($1::uuid, $2, $3, $4, $5) RETURNING *),
        t AS (SELECT clock_timestamp() AS ts),
        \(openTurnRows(user: "$6", text: "$7", assistant: "$8", conversation: "$1::uuid", model: "$5", provider: "$9",
                       writer: "$10", deployment: "$11", upstream: "$12", from: "t"))
        SELECT c.id::text AS id, c.title, c.system_prompt, c.model, \(iso("c.created_at")) AS created_at,
               \(iso("c.updated_at")) AS updated_at, \(iso("t.ts")) AS user_created_at
        FROM c, t
        """

    /// A further turn: $1 conversation, $2 owner, $3 model, $4 user message id, $5 its text,
    /// $6 assistant message id, $7 provider, $8 writer, $9 deployment, $10 upstream model, $11 and
    /// $12 the history budget (messages, characters). Returns one row per earlier message within the budget (columns `m_*`,
    /// oldest first; one row of NULLs when there is none) beside the conversation's columns, and
    /// no row when the conversation is missing or another owner's (then nothing is written). The
    /// new rows are placed strictly after the conversation's latest message, so (created_at, id)
    /// keeps the order.
    static let beginNextTurn = """
        WITH c AS (
            UPDATE conversations SET updated_at = now(), model = coalesce($3, model)
            WHERE id = $1::uuid AND owner_key_hash = $2 RETURNING *),
        t AS (SELECT \(afterLatestMessage(of: "$1::uuid")) AS ts),
        \(openTurnRows(user: "$4", text: "$5", assistant: "$6", conversation: "c.id", model: "$3", provider: "$7",
                       writer: "$8", deployment: "$9", upstream: "$10", from: "c, t"))
        SELECT c.id::text AS id, c.title, c.system_prompt, c.model, \(iso("c.created_at")) AS created_at,
               \(iso("c.updated_at")) AS updated_at, \(iso("t.ts")) AS user_created_at,
               m.id::text AS m_id, m.role AS m_role, m.content AS m_content, m.status AS m_status,
               \(iso("m.created_at")) AS m_created_at
        FROM c CROSS JOIN t \(historyJoin(maxMessages: "$11", maxCharacters: "$12"))
        ORDER BY m.created_at, m.id
        """

    /// The history a turn sends upstream, as `LEFT JOIN LATERAL … m`: the newest messages of
    /// conversation `c` within a budget (at most `maxMessages`, and as many of the newest as fit in
    /// `maxCharacters`), read newest first through the (conversation_id, created_at, id) index so a
    /// long conversation costs no more than the budget. A multi-model turn's answers are left out
    /// except the run its user message selected.
    static func historyJoin(maxMessages: String, maxCharacters: String) -> String {
        """
        LEFT JOIN LATERAL (
            SELECT h.id, h.role, h.content, h.status, h.created_at FROM (
                SELECT m.id, m.role, m.content, m.status, m.created_at,
                       sum(length(m.content)) OVER (ORDER BY m.created_at DESC, m.id DESC) AS upto
                FROM messages m
                WHERE m.conversation_id = c.id
                  AND NOT EXISTS (SELECT 1 FROM model_runs r JOIN messages u ON u.id = r.turn_id
                                  WHERE r.id = m.id AND u.selected_run IS DISTINCT FROM r.id)
                ORDER BY m.created_at DESC, m.id DESC
                LIMIT \(maxMessages)::int) h
            WHERE h.upto <= \(maxCharacters)::bigint) m ON true
        """
    }

    /// Writes a turn again after the database lost it: the conversation and user message when
    /// missing, and the assistant message with its final values ($11–$24, as in `finalizeMessage`
    /// $3–$16; the model is $22 when given, else $9). $1 conversation, $2 owner, $3 title, $4 system, $5 model, $6 user message id,
    /// $7 its text, $8 assistant message id, $9 model, $10 provider.
    static let restoreTurn = """
        WITH c AS (
            INSERT INTO conversations (id, owner_key_hash, title, system_prompt, model)
            VALUES ($1::uuid, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING),
        t AS (SELECT \(afterLatestMessage(of: "$1::uuid")) AS ts),
        u AS (
            INSERT INTO messages (id, conversation_id, role, content, status, created_at, updated_at)
            SELECT $6::uuid, $1::uuid, 'user', $7::text, 'complete', t.ts, t.ts FROM t
            ON CONFLICT (id) DO NOTHING)
        INSERT INTO messages (id, conversation_id, role, content, status, model, provider, finish_reason, prompt_tokens,
                              completion_tokens, total_tokens, ttft_ms, latency_ms, error, deployment, upstream_model,
                              attempts, cached, created_at, updated_at)
        SELECT $8::uuid, $1::uuid, 'assistant', $11, $12, coalesce($22, $9), $10, $13, $14::int, $15::int, $16::int, $17::int,
               $18::int, $19, $20, $21, $23::jsonb, coalesce($24::boolean, false), t.ts + interval '1 microsecond',
               t.ts + interval '1 microsecond' FROM t
        ON CONFLICT (id) DO NOTHING
        """

    static let finalizeMessage = """
        UPDATE messages m SET content = $3, status = $4, finish_reason = $5, prompt_tokens = $6::int,
               completion_tokens = $7::int, total_tokens = $8::int, ttft_ms = $9::int, latency_ms = $10::int,
               error = $11, deployment = coalesce($12, m.deployment), upstream_model = coalesce($13, m.upstream_model),
               model = coalesce($14, m.model), attempts = coalesce($15::jsonb, m.attempts),
               cached = coalesce($16::boolean, m.cached), updated_at = now()
        FROM conversations c
        WHERE m.id = $1::uuid AND c.id = m.conversation_id AND c.owner_key_hash = $2
        """

    /// $3: a message id to leave out (the just-opened assistant row), or NULL.
    static let selectMessages = """
        SELECT m.id::text AS id, m.conversation_id::text AS conversation_id, m.role, m.content, m.model, m.provider,
               m.status, m.finish_reason, m.prompt_tokens, m.completion_tokens, m.total_tokens, m.ttft_ms,
               m.latency_ms, m.error, m.deployment, m.upstream_model, m.attempts::text AS attempts, m.cached,
               \(iso("m.created_at")) AS created_at, r.turn_id::text AS run_turn, r.position AS run_position,
               r.mode AS run_mode, r.status AS run_status, r.cost_usd::text AS run_cost,
               (u.selected_run = r.id) AS run_selected
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        LEFT JOIN model_runs r ON r.id = m.id LEFT JOIN messages u ON u.id = r.turn_id
        WHERE m.conversation_id = $1::uuid AND c.owner_key_hash = $2 AND ($3::uuid IS NULL OR m.id <> $3::uuid)
        ORDER BY m.created_at, m.id
        """
}
