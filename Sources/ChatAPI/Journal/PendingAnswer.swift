import JSONCore
import Reactor
import Storage

/// Every value of an answer's final write, as one value: the write is built from it, and the
/// journal keeps it while the database is away. A field added to the final write is added here
/// (the property, `store`, and the two JSON functions below), and nowhere else.
struct PendingAnswer: Equatable {
    var owner: String
    var messageID: String
    var text: String
    var status: MessageStatus
    var finishReason: String?
    var usage: TokenUsage?
    var ttftMs: Int?
    var latencyMs: Int?
    var error: String?
    /// The public model name, the catalog deployment and the model id sent upstream.
    var model: String?
    var deployment: String?
    var upstreamModel: String?
    /// The upstream attempts as stored (a JSON array), when there were any.
    var attemptsJSON: String?
    /// What `beginTurn` stored: the conversation and the user message, written again when the
    /// database lost them.
    var turn: TurnStart
    /// Served from the response cache.
    var cached = false
    /// One run of a multi-model turn: its final write is `finalizeRun`, with its cost.
    var isRun = false
    var runCostUSD: String?

    /// The final write: finalize the answer, else store the whole turn again if the database lost
    /// it (idempotent: a second write of the same answer changes nothing). A run's write tells
    /// `selected` whether it became its turn's selected answer.
    func store(in store: ChatStore, selected: @escaping (Bool) -> Void = { _ in },
               completion: @escaping (Result<Bool, StoreError>) -> Void) {
        if isRun {
            // A multi-model turn's rows are committed with their flush: there is no turn to restore.
            store.finalizeRun(owner: owner, id: messageID, text: text, status: status, finishReason: finishReason, usage: usage,
                              ttftMs: ttftMs, latencyMs: latencyMs, error: error, model: model, deployment: deployment,
                              upstreamModel: upstreamModel, attempts: attemptsJSON, costUSD: runCostUSD) { r in
                if case .success(let f) = r { selected(f.selected) }
                completion(r.map(\.stored))
            }
            return
        }
        store.finalizeAssistantMessage(owner: owner, id: messageID, text: text, status: status, finishReason: finishReason,
                                       usage: usage, ttftMs: ttftMs, latencyMs: latencyMs, error: error, turn: turn,
                                       model: model, deployment: deployment, upstreamModel: upstreamModel,
                                       attempts: attemptsJSON, cached: cached, completion: completion)
    }

    /// The record's format version; a reader skips records of a version it does not know.
    static let version = 1

    /// The journal record: a JSON object with named fields (absent optionals are left out), so
    /// fields can be added without breaking older records.
    func journalRecord() -> [UInt8] {
        var w = JSONWriter(capacity: 512 + text.utf8.count)
        w.beginObject()
        w.field("v", Self.version)
        w.field("owner", owner)
        w.field("message_id", messageID)
        w.field("text", text)
        w.field("status", status.rawValue)
        optional(&w, "finish_reason", finishReason)
        optional(&w, "prompt_tokens", usage?.promptTokens)
        optional(&w, "completion_tokens", usage?.completionTokens)
        optional(&w, "total_tokens", usage?.totalTokens)
        optional(&w, "ttft_ms", ttftMs)
        optional(&w, "latency_ms", latencyMs)
        optional(&w, "error", error)
        optional(&w, "model", model)
        optional(&w, "deployment", deployment)
        optional(&w, "upstream_model", upstreamModel)
        optional(&w, "attempts", attemptsJSON)
        let c = turn.conversation
        w.field("conversation_id", c.id)
        optional(&w, "conversation_title", c.title)
        optional(&w, "system_prompt", c.systemPrompt)
        optional(&w, "conversation_model", c.model)
        w.field("new_conversation", turn.isNewConversation)
        w.field("user_message_id", turn.userMessageID)
        w.field("user_text", turn.userMessage?.content ?? "")
        optional(&w, "turn_model", turn.model)
        optional(&w, "turn_provider", turn.provider)
        optional(&w, "turn_deployment", turn.deployment)
        optional(&w, "turn_upstream_model", turn.upstreamModel)
        if cached { w.field("cached", true) }
        if isRun { w.field("run", true) }
        optional(&w, "run_cost_usd", runCostUSD)
        w.endObject()
        return w.bytes
    }

    /// An answer read back from the journal, or why the record cannot be one.
    static func fromJournal(_ record: [UInt8]) -> Result<PendingAnswer, JournalRecordError> {
        let v: JSONValue
        do { v = try JSONParser.parse(record) } catch { return .failure(JournalRecordError("not JSON: \(error)")) }
        guard v["v"]?.int == Int64(version) else { return .failure(JournalRecordError("unknown record version")) }
        func text(_ k: String) -> String? { v[k]?.string }
        func number(_ k: String) -> Int? { v[k]?.int.map { Int(truncatingIfNeeded: $0) } }
        guard let owner = text("owner"), let id = text("message_id"), let answer = text("text"),
              let status = text("status").flatMap(MessageStatus.init(rawValue:)),
              let conversationID = text("conversation_id"), let userID = text("user_message_id"), let userText = text("user_text")
        else { return .failure(JournalRecordError("a required field is missing")) }
        // Usage without any count writes the same as no usage, so absent counts read as none.
        let counts = (number("prompt_tokens"), number("completion_tokens"), number("total_tokens"))
        let usage = counts == (nil, nil, nil) ? nil : TokenUsage(promptTokens: counts.0, completionTokens: counts.1, totalTokens: counts.2)
        let turn = TurnStart(conversationID: conversationID, title: text("conversation_title"), systemPrompt: text("system_prompt"),
                             conversationModel: text("conversation_model"), isNewConversation: v["new_conversation"]?.bool ?? false,
                             userMessageID: userID, userText: userText, assistantMessageID: id, model: text("turn_model"),
                             provider: text("turn_provider"), deployment: text("turn_deployment"),
                             upstreamModel: text("turn_upstream_model"))
        return .success(PendingAnswer(owner: owner, messageID: id, text: answer, status: status, finishReason: text("finish_reason"),
                                      usage: usage, ttftMs: number("ttft_ms"), latencyMs: number("latency_ms"), error: text("error"),
                                      model: text("model"), deployment: text("deployment"), upstreamModel: text("upstream_model"),
                                      attemptsJSON: text("attempts"), turn: turn, cached: v["cached"]?.bool ?? false,
                                      isRun: v["run"]?.bool ?? false, runCostUSD: text("run_cost_usd")))
    }

    private func optional(_ w: inout JSONWriter, _ name: String, _ value: String?) {
        if let value { w.field(name, value) }
    }

    private func optional(_ w: inout JSONWriter, _ name: String, _ value: Int?) {
        if let value { w.field(name, value) }
    }
}

/// A journal record that is whole (its checksum matched) but not an answer this version reads.
struct JournalRecordError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
