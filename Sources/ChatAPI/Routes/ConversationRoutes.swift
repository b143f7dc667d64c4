import HTTP
import JSONCore
import Storage

/// GET/DELETE of stored conversations, always scoped to the caller's key.
extension ChatService {
    func listConversations(_ req: HTTPRequest, _ r: HTTPResponder) {
        guard let owner = authorize(req, r, retry: { [self] in listConversations(req, r) })?.owner else { return }
        var limit = 20
        var cursor: String?
        for item in (req.head.query ?? "").split(separator: "&") {
            let kv = item.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            if kv[0] == "limit" {
                guard let n = Int(kv[1]), (1...100).contains(n) else {
                    return r.respond(ClientError.invalid("limit must be an integer from 1 to 100", param: "limit"))
                }
                limit = n
            } else if kv[0] == "cursor" {
                cursor = String(kv[1])
            }
        }
        store.listConversations(owner: owner, limit: limit, cursor: cursor) { [self] result in
            switch result {
            case .failure(.invalidCursor):
                r.respond(ClientError.invalid("cursor is not one this server issued", param: "cursor"))
            case .failure(let e):
                storeFailed(e, r)
            case .success(let page):
                var w = JSONWriter()
                w.beginObject()
                w.key("conversations")
                w.beginArray()
                for c in page.items {
                    w.beginObject()
                    w.field("id", c.id)
                    w.field("title", c.title)
                    w.field("model", c.model)
                    w.field("created_at", c.createdAt)
                    w.field("updated_at", c.updatedAt)
                    w.field("message_count", c.messageCount)
                    w.endObject()
                }
                w.endArray()
                w.field("next_cursor", page.nextCursor)
                w.endObject()
                r.respondJSON(status: 200, w.bytes)
            }
        }
    }

    func getConversation(_ req: HTTPRequest, _ id: String, _ r: HTTPResponder) {
        guard let owner = authorize(req, r, retry: { [self] in getConversation(req, id, r) })?.owner else { return }
        guard isValidUUID(id) else { return notFound(r) }
        store.getConversation(owner: owner, id: id) { [self] result in
            switch result {
            case .failure(let e): storeFailed(e, r)
            case .success(nil): notFound(r)
            case .success(let d?):
                var w = JSONWriter()
                w.beginObject()
                w.field("id", d.conversation.id)
                w.field("title", d.conversation.title)
                w.field("system", d.conversation.systemPrompt)
                w.field("model", d.conversation.model)
                w.field("created_at", d.conversation.createdAt)
                w.field("updated_at", d.conversation.updatedAt)
                w.key("messages")
                w.beginArray()
                for m in d.messages {
                    w.beginObject()
                    w.field("id", m.id)
                    w.field("role", m.role.rawValue)
                    w.field("content", m.content)
                    w.field("model", m.model)
                    w.field("provider", m.provider)
                    w.field("deployment", m.deployment)
                    w.field("upstream_model", m.upstreamModel)
                    if let a = m.attemptsJSON, let parsed = try? JSONParser.parse(Array(a.utf8)) {
                        w.key("attempts")
                        w.value(parsed)
                    }
                    w.field("status", m.status.rawValue)
                    w.field("finish_reason", m.finishReason)
                    w.usage(m.usage.map { ($0.promptTokens, $0.completionTokens, $0.totalTokens) })
                    w.field("ttft_ms", m.ttftMs)
                    w.field("latency_ms", m.latencyMs)
                    w.field("error", m.error)
                    w.field("created_at", m.createdAt)
                    if m.cached { w.field("cached", true) }
                    if let run = m.run {
                        w.key("run")
                        w.beginObject()
                        w.field("id", m.id)
                        w.field("turn_id", run.turnID)
                        w.field("position", run.position)
                        w.field("mode", run.mode.rawValue)
                        w.field("model", m.model)
                        w.field("status", run.status.rawValue)
                        w.field("selected", run.selected)
                        w.field("cost_usd", run.costUSD.map(USD.normalized))
                        w.endObject()
                    }
                    w.endObject()
                }
                w.endArray()
                w.endObject()
                r.respondJSON(status: 200, w.bytes)
            }
        }
    }

    /// POST /api/v1/conversations/{id}/runs/{run}/select: the next turn's history continues from
    /// this run of a multi-model turn.
    func selectRun(_ req: HTTPRequest, _ id: String, _ run: String, _ r: HTTPResponder) {
        guard let owner = authorize(req, r, retry: { [self] in selectRun(req, id, run, r) })?.owner else { return }
        guard isValidUUID(id), isValidUUID(run) else { return runNotFound(r) }
        store.selectRun(owner: owner, conversationID: id, runID: run) { [self] result in
            switch result {
            case .failure(let e): storeFailed(e, r)
            case .success(nil): runNotFound(r)
            case .success(let turn?):
                var w = JSONWriter()
                w.beginObject()
                w.field("turn_id", turn)
                w.field("selected_run", run.lowercased())
                w.endObject()
                r.respondJSON(status: 200, w.bytes)
            }
        }
    }

    private func runNotFound(_ r: HTTPResponder) {
        r.respondError(status: 404, type: "not_found", message: "no such run in this conversation")
    }

    func deleteConversation(_ req: HTTPRequest, _ id: String, _ r: HTTPResponder) {
        guard let owner = authorize(req, r, retry: { [self] in deleteConversation(req, id, r) })?.owner else { return }
        guard isValidUUID(id) else { return notFound(r) }
        store.deleteConversation(owner: owner, id: id) { [self] result in
            switch result {
            case .failure(let e): storeFailed(e, r)
            case .success(false): notFound(r)
            case .success(true): r.respond(status: 204)
            }
        }
    }

    private func notFound(_ r: HTTPResponder) {
        r.respondError(status: 404, type: "not_found", message: "conversation not found")
    }

    func storeFailed(_ e: StoreError, _ r: HTTPResponder) {
        logger.error("database query failed", [("error", .string(e.description))])
        if case .database(.overloaded) = e {
            var h = HTTPHeaders()
            h.add("Retry-After", "1")
            r.respondError(status: 503, type: "overloaded", message: "too many queries waiting for the database", headers: h)
        } else {
            databaseUnavailable(r)
        }
    }
}
