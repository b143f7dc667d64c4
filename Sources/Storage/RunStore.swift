import Reactor

/// One model of a multi-model turn, as opened: its public name and where it was routed.
public struct RunOpening: Sendable, Equatable {
    public var model: String
    public var provider: String
    public var deployment: String
    public var upstreamModel: String

    public init(model: String, provider: String, deployment: String, upstreamModel: String) {
        self.model = model
        self.provider = provider
        self.deployment = deployment
        self.upstreamModel = upstreamModel
    }
}

/// How a multi-model turn runs its models: all to the end, or the first to answer wins.
public enum RunMode: String, Sendable, Equatable {
    case all, fastest
}

/// A run of a multi-model turn, as the conversation view shows it beside its answer.
public struct RunInfo: Sendable, Equatable {
    public var turnID: String
    public var position: Int
    public var mode: RunMode
    /// As `model_runs` has it (the answer row has it too).
    public var status: MessageStatus
    public var selected: Bool
    /// Decimal USD, as stored.
    public var costUSD: String?
}

/// What `beginMultiTurn` stored: the shared turn (its `assistantMessageID` is the first run's)
/// and one `TurnStart` per run, each naming its own answer row, in the order of the request.
public struct MultiTurnStart: Sendable, Equatable {
    public var runs: [TurnStart]
    public var turnID: String { runs.first?.userMessageID ?? "" }
}

/// How a run's final write went: whether its answer row was there, and whether this run became
/// the one its turn continues from (the first to complete).
public struct RunFinal: Sendable, Equatable {
    public var stored: Bool
    public var selected: Bool
}

extension ChatStore {
    /// Stores a turn answered by several models in one round trip: the user message, one
    /// `streaming` answer row and one `model_runs` row per model, and (for an existing
    /// conversation) loads the history within `budget`. Committed with its flush, unlike
    /// `beginTurn`: a multi-model turn is not the hot path, and its final writes then never need
    /// to write the turn again.
    public func beginMultiTurn(owner: String, conversationID: String?, system: String?, userText: String,
                               runs: [RunOpening], mode: RunMode, history budget: HistoryBudget = .standard,
                               completion: @escaping (Result<MultiTurnStart, StoreError>) -> Void) {
        if let c = conversationID, !isValidUUID(c) { completion(.failure(.notFound)); return }
        guard let first = runs.first else { completion(.failure(.invalidArgument("a multi-model turn needs a model"))); return }
        let isNew = conversationID == nil
        let convID = conversationID?.lowercased() ?? makeUUIDv4()
        let userID = makeUUIDv4()
        let ids = runs.map { _ in makeUUIDv4() }
        let arrays = [PGArray.literal(ids), PGArray.literal(runs.map(\.model)), PGArray.literal(runs.map(\.provider)),
                      PGArray.literal(runs.map(\.deployment)), PGArray.literal(runs.map(\.upstreamModel))]
        let query = isNew
            ? PGQuery(RunSQL.beginNewTurn, [convID, owner, Self.defaultTitle(userText), system, first.model, userID, userText]
                        + arrays + [writer, mode.rawValue], prepared: "cr_runs_new")
            : PGQuery(RunSQL.beginNextTurn, [convID, owner, first.model, userID, userText] + arrays
                        + [writer, mode.rawValue, String(budget.messages), String(budget.characters)], prepared: "cr_runs_next")
        let lossMark = pool.connectionLosses
        pool.query(query.sql, query.params, prepared: query.preparedName) { r in
            let res: PGResult
            switch r {
            case .failure(let e): completion(.failure(.database(e))); return
            case .success(let x): res = x
            }
            guard let conv = Self.conversation(res, 0) else { completion(.failure(.notFound)); return }
            let history = Self.turnHistory(res, conversation: conv, isNew: isNew, userID: userID, userText: userText)
            let starts = zip(ids, runs).map { id, run in
                TurnStart(conversation: conv, isNewConversation: isNew, userMessageID: userID, assistantMessageID: id,
                          history: history, lossMark: lossMark, model: run.model, provider: run.provider,
                          deployment: run.deployment, upstreamModel: run.upstreamModel)
            }
            completion(.success(MultiTurnStart(runs: starts)))
        }
    }

    /// The final write of one run: its answer row (as `finalizeAssistantMessage`), its `model_runs`
    /// row with the cost, and, when it completed first among its turn's runs, the turn's selection.
    /// The selection is taken under the user message's row lock, so two runs completing at once
    /// cannot both be selected.
    public func finalizeRun(owner: String, id: String, text: String, status: MessageStatus, finishReason: String?,
                            usage: TokenUsage?, ttftMs: Int?, latencyMs: Int?, error: String?, model: String?,
                            deployment: String?, upstreamModel: String?, attempts: String?, costUSD: String?,
                            completion: @escaping (Result<RunFinal, StoreError>) -> Void) {
        guard isValidUUID(id) else { completion(.success(RunFinal(stored: false, selected: false))); return }
        let params: [String?] = [id, owner, text, status.rawValue, finishReason,
                                 usage?.promptTokens.map(String.init), usage?.completionTokens.map(String.init),
                                 usage?.totalTokens.map(String.init), ttftMs.map(String.init), latencyMs.map(String.init), error,
                                 deployment, upstreamModel, model, attempts, nil, costUSD]
        pool.query(RunSQL.finalizeRun, params, prepared: "cr_run_finalize") { r in
            completion(r.mapError(StoreError.database).map { res in
                RunFinal(stored: (res.value(0, "stored").flatMap { Int($0) } ?? 0) > 0,
                         selected: (res.value(0, "selected").flatMap { Int($0) } ?? 0) > 0)
            })
        }
    }

    /// Makes `runID` the run its turn continues from; completes with the turn's id, or nil when
    /// the run is not one of this owner's conversation's.
    public func selectRun(owner: String, conversationID: String, runID: String,
                          completion: @escaping (Result<String?, StoreError>) -> Void) {
        guard isValidUUID(conversationID), isValidUUID(runID) else { completion(.success(nil)); return }
        pool.query(RunSQL.selectRun, [conversationID, owner, runID], prepared: "cr_run_select") { r in
            completion(r.mapError(StoreError.database).map { $0.value(0, "turn_id") })
        }
    }
}

/// The SQL of multi-model turns.
enum RunSQL {
    /// The CTEs `a` (the runs, numbered from 1), `n` (the user message at `t.ts` and one answer row
    /// per run just after it, in run order) and `rr` (the `model_runs` rows). Arrays are $`first`
    /// to $`first`+4: answer ids, models, providers, deployments, upstream models.
    static func openRunRows(user: String, text: String, conversation: String, first: Int, writer: String, mode: String,
                            from: String) -> String {
        """
        a AS (
            SELECT * FROM unnest($\(first)::uuid[], $\(first + 1)::text[], $\(first + 2)::text[], $\(first + 3)::text[],
                                 $\(first + 4)::text[]) WITH ORDINALITY AS x(id, model, provider, deployment, upstream, k)),
        n AS (
            INSERT INTO messages (id, conversation_id, role, content, status, model, provider, writer, deployment,
                                  upstream_model, created_at, updated_at)
            SELECT \(user)::uuid, \(conversation), 'user', \(text)::text, 'complete', NULL, NULL, NULL, NULL, NULL, t.ts, t.ts
            FROM \(from)
            UNION ALL
            SELECT a.id, \(conversation), 'assistant', '', 'streaming', a.model, a.provider, \(writer)::text, a.deployment,
                   a.upstream, t.ts + a.k * interval '1 microsecond', t.ts + a.k * interval '1 microsecond'
            FROM \(from), a),
        rr AS (
            INSERT INTO model_runs (id, turn_id, conversation_id, position, mode, model, deployment)
            SELECT a.id, \(user)::uuid, \(conversation), a.k - 1, \(mode)::text, a.model, a.deployment FROM \(from), a)
        """
    }

    /// $1 conversation, $2 owner, $3 title, $4 system, $5 model, $6 user message id, $7 its text,
    /// $8–$12 the run arrays, $13 writer, $14 mode.
    static let beginNewTurn = """
        WITH c AS (
            INSERT INTO conversations (id, owner_key_hash, title, system_prompt, model)
            VALUES ($1::uuid, $2, $3, $4, $5) RETURNING *),
        t AS (SELECT clock_timestamp() AS ts),
        \(openRunRows(user: "$6", text: "$7", conversation: "$1::uuid", first: 8, writer: "$13", mode: "$14", from: "t"))
        SELECT c.id::text AS id, c.title, c.system_prompt, c.model, \(SQL.iso("c.created_at")) AS created_at,
               \(SQL.iso("c.updated_at")) AS updated_at, \(SQL.iso("t.ts")) AS user_created_at
        FROM c, t
        """

    /// $1 conversation, $2 owner, $3 model, $4 user message id, $5 its text, $6–$10 the run arrays,
    /// $11 writer, $12 mode, $13 and $14 the history budget. Rows as `SQL.beginNextTurn`'s.
    static let beginNextTurn = """
        WITH c AS (
            UPDATE conversations SET updated_at = now(), model = coalesce($3, model)
            WHERE id = $1::uuid AND owner_key_hash = $2 RETURNING *),
        t AS (SELECT \(SQL.afterLatestMessage(of: "$1::uuid")) AS ts),
        \(openRunRows(user: "$4", text: "$5", conversation: "c.id", first: 6, writer: "$11", mode: "$12", from: "c, t"))
        SELECT c.id::text AS id, c.title, c.system_prompt, c.model, \(SQL.iso("c.created_at")) AS created_at,
               \(SQL.iso("c.updated_at")) AS updated_at, \(SQL.iso("t.ts")) AS user_created_at,
               m.id::text AS m_id, m.role AS m_role, m.content AS m_content, m.status AS m_status,
               \(SQL.iso("m.created_at")) AS m_created_at
        FROM c CROSS JOIN t \(SQL.historyJoin(maxMessages: "$13", maxCharacters: "$14"))
        ORDER BY m.created_at, m.id
        """

    /// $1–$16 as `SQL.finalizeMessage`, $17 the run's cost in USD.
    static let finalizeRun = """
        WITH m AS (\(SQL.finalizeMessage) RETURNING m.id),
        r AS (
            UPDATE model_runs r SET status = $4, deployment = coalesce($12, r.deployment), prompt_tokens = $6::int,
                   completion_tokens = $7::int, cost_usd = $17::numeric, ttft_ms = $9::int, latency_ms = $10::int,
                   error = $11, finished_at = now()
            FROM m WHERE r.id = m.id RETURNING r.turn_id),
        s AS (
            UPDATE messages u SET selected_run = $1::uuid FROM r
            WHERE $4 = 'complete' AND u.id = r.turn_id AND u.selected_run IS NULL RETURNING u.id)
        SELECT (SELECT count(*) FROM m) AS stored, (SELECT count(*) FROM s) AS selected
        """

    /// $1 conversation, $2 owner, $3 run.
    static let selectRun = """
        UPDATE messages u SET selected_run = r.id
        FROM model_runs r JOIN conversations c ON c.id = r.conversation_id
        WHERE r.id = $3::uuid AND r.conversation_id = $1::uuid AND c.owner_key_hash = $2 AND u.id = r.turn_id
        RETURNING u.id::text AS turn_id
        """
}
