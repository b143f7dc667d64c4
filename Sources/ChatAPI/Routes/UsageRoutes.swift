import HTTP
import JSONCore
import Storage

/// GET /api/v1/usage (the caller's key) and GET /admin/v1/usage (every key): the ledger's totals
/// by day and model over a date range, with the key's limits and what is left of its budget.
extension ChatService {
    /// The range asked for (`from`, `to`: `YYYY-MM-DD`, UTC, inclusive; by default the last 30
    /// days), and for the admin view an optional `key`; nil when a 400 has been sent.
    private func usageQuery(_ req: HTTPRequest, _ r: HTTPResponder) -> (from: CivilDate, to: CivilDate, key: String?)? {
        var from: CivilDate?
        var to: CivilDate?
        var key: String?
        for item in (req.head.query ?? "").split(separator: "&") {
            let kv = item.split(separator: "=", maxSplits: 1)
            let name = kv.first.map(String.init) ?? ""
            let value = kv.count == 2 ? String(kv[1]) : ""
            switch name {
            case "from", "to":
                guard let d = CivilDate(value) else {
                    r.respond(ClientError.invalid("\(name) must be a date as YYYY-MM-DD", param: name))
                    return nil
                }
                if name == "from" { from = d } else { to = d }
            case "key":
                guard isValidUUID(value) else {
                    r.respond(ClientError.invalid("key must be a key id", param: "key"))
                    return nil
                }
                key = value.lowercased()
            default:
                continue
            }
        }
        let end = to ?? CivilDate.today()
        let start = from ?? CivilDate(days: end.days - 29)
        guard start <= end, end.days - start.days <= 366 else {
            r.respond(ClientError.invalid("from must not be after to, and the range must be at most 367 days", param: "from"))
            return nil
        }
        return (start, end, key)
    }

    func usage(_ req: HTTPRequest, _ r: HTTPResponder) {
        guard let caller = authorize(req, r, retry: { [self] in usage(req, r) }), let q = usageQuery(req, r) else { return }
        // This worker's own latest turns are written first, so a client reads its own usage at once
        // (other workers' follow within their flush interval).
        usageLedger.flush { [self] in
            UsageStore(pool: pool).totals(owner: caller.owner, from: q.from.text, to: q.to.text) { [self] result in
                switch result {
                case .failure(let e): storeFailed(e, r)
                case .success(let rows): r.respondJSON(status: 200, usageJSON(rows, from: q.from, to: q.to, caller: caller, admin: false))
                }
            }
        }
    }

    func adminUsage(_ req: HTTPRequest, _ r: HTTPResponder) {
        guard let q = usageQuery(req, r) else { return }
        usageLedger.flush { [self] in
            UsageStore(pool: pool).totals(owner: q.key, from: q.from.text, to: q.to.text) { [self] result in
                switch result {
                case .failure(let e): storeFailed(e, r)
                case .success(let rows): r.respondJSON(status: 200, usageJSON(rows, from: q.from, to: q.to, caller: nil, admin: true))
                }
            }
        }
    }

    private func usageJSON(_ rows: [UsageRow], from: CivilDate, to: CivilDate, caller: Caller?, admin: Bool) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.field("object", "usage")
        w.field("from", from.text)
        w.field("to", to.text)
        w.key("data")
        w.beginArray()
        var requests: Int64 = 0, prompt: Int64 = 0, completion: Int64 = 0, cost: Int64 = 0, estimated: Int64 = 0
        for row in rows {
            let pico = USD.pico(row.costUSD) ?? 0
            w.beginObject()
            w.field("day", row.day)
            if admin {
                w.field("key_id", row.owner)
                w.field("key_name", row.keyName)
            }
            w.field("model", row.model)
            w.field("requests", Int(row.requests))
            w.field("prompt_tokens", Int(row.promptTokens))
            w.field("completion_tokens", Int(row.completionTokens))
            w.field("cost_usd", USD.format(pico))
            w.field("estimated_requests", Int(row.estimatedRequests))
            w.endObject()
            requests += row.requests
            prompt += row.promptTokens
            completion += row.completionTokens
            cost += pico
            estimated += row.estimatedRequests
        }
        w.endArray()
        w.key("totals")
        w.beginObject()
        w.field("requests", Int(requests))
        w.field("prompt_tokens", Int(prompt))
        w.field("completion_tokens", Int(completion))
        w.field("cost_usd", USD.format(cost))
        w.field("estimated_requests", Int(estimated))
        w.endObject()
        if !admin {
            w.key("limits")
            if let key = caller?.key { writeLimits(&w, key) } else { w.null() }
        }
        w.endObject()
        return w.bytes
    }

    /// The key's limits and where its windows stand now (as this worker last saw them).
    private func writeLimits(_ w: inout JSONWriter, _ key: DirectoryKey) {
        let l = key.record.limits
        w.beginObject()
        w.field("rpm", l.rpm)
        w.field("tpm", l.tpm)
        w.field("max_streams", l.maxStreams)
        w.field("budget_usd", l.budgetUSD.flatMap(USD.pico).map(USD.format))
        w.field("budget_period", l.budgetPeriod?.rawValue)
        w.key("models")
        if let models = l.models {
            w.beginArray()
            for m in models { w.string(m) }
            w.endArray()
        } else {
            w.null()
        }
        if let budget = key.budgetPico, let window = keyLimiter.usdWindow(key), let spent = limitWindows.reading(window) {
            w.field("budget_spent_usd", USD.format(max(0, budget - spent.remaining)))
            w.field("budget_resets_in_s", Int(KeyLimiter.seconds(spent.resetMs)))
        }
        w.endObject()
    }
}
