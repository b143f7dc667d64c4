import HTTP
import Storage

/// GET /api/v1/messages/{id}/stream: the rest of an answer from where a client left it
/// (`Last-Event-ID: <id>:<characters>`, or `?after=<characters>`), then live until it ends, on
/// any instance. Owner-scoped like every read: another key's answer is `404`.
extension ChatService {
    func resumeAnswer(_ req: HTTPRequest, _ id: String, _ r: HTTPResponder) {
        guard let caller = authorize(req, r, queryToken: true, retry: { [self] in resumeAnswer(req, id, r) }) else { return }
        guard isValidUUID(id) else { return answerNotFound(r) }
        let messageID = id.lowercased()
        var from = 0
        if let header = req.head.headers["Last-Event-ID"]?.trimmingSpaces, !header.isEmpty {
            guard let p = EventPosition(header) else {
                return r.respond(ClientError.invalid("Last-Event-ID must be an event id of this stream, <message id>:<characters>",
                                                     param: "Last-Event-ID"))
            }
            // An id from another answer says nothing about this one.
            guard p.messageID == messageID else { return answerNotFound(r) }
            from = p.characters
        } else if let after = Self.queryValue(req.head.query, "after") {
            if let p = EventPosition(after) {
                guard p.messageID == messageID else { return answerNotFound(r) }
                from = p.characters
            } else if let n = Int(after), n >= 0, after.utf8.count <= 10 {
                from = n
            } else {
                return r.respond(ClientError.invalid("after must be a number of characters or an event id", param: "after"))
            }
        }
        if let turn = liveAnswers[messageID], turn.owner == caller.owner {
            // Generated right here: followed in memory.
            return turn.follow(r, from: from)
        }
        guard pool.isHealthy else { return databaseUnavailable(r) }
        ProgressStore(pool: pool).answer(owner: caller.owner, id: messageID) { [self] result in
            switch result {
            case .failure(let e): storeFailed(e, r)
            case .success(nil): answerNotFound(r)
            case .success(let a?):
                guard r.isClientConnected else { return }
                // It may have started here meanwhile (a turn starting on this worker).
                if let turn = liveAnswers[messageID], turn.owner == caller.owner { return turn.follow(r, from: from) }
                let s = ResumedStream(responder: r, messageID: messageID, characters: from, loop: loop, pingSeconds: pingSeconds)
                s.begin()
                if a.status == .streaming {
                    s.catchUp(to: a.content)
                    remoteFollowers.add(s)
                } else {
                    s.finish(a)
                }
            }
        }
    }

    private func answerNotFound(_ r: HTTPResponder) {
        r.respondError(status: 404, type: "not_found", message: "answer not found")
    }

    static func queryValue(_ query: String?, _ name: String) -> String? {
        for item in (query ?? "").split(separator: "&") {
            let kv = item.split(separator: "=", maxSplits: 1)
            if kv.first.map(String.init) == name { return kv.count == 2 ? String(kv[1]).removingPercentEncodingOfColons : "" }
        }
        return nil
    }
}

private extension String {
    /// `%3A` → `:` (an event id in a query string), nothing else decoded.
    var removingPercentEncodingOfColons: String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(of: "%3") {
            out += rest[..<r.lowerBound]
            let after = rest[r.upperBound...]
            if let c = after.first, c == "A" || c == "a" {
                out += ":"
                rest = after.dropFirst()
            } else {
                out += "%3"
                rest = after
            }
        }
        return out + rest
    }
}
