import HTTP

/// What the mock keeps per model request while it is answered: its `RequestLog` entry, and
/// whether the mock itself dropped the connection (so the log says `reset`, not `disconnected`).
final class LogTicket {
    let seq: Int
    var droppedOnPurpose = false
    init(seq: Int) { self.seq = seq }
}

/// The request log's side of the server: recording model requests, their faults and outcomes,
/// and `GET|DELETE /requests`.
extension MockServer {
    func addRequestLogRoutes(_ router: Router) {
        router.add(.get, "/requests") { [unowned self] req, _, r in
            r.respondJSON(status: 200, self.log.json(tag: MockTag.queryValue(req.head.query, "tag")))
        }
        router.add(.delete, "/requests") { [unowned self] _, _, r in
            self.log.removeAll()
            r.respond(status: 204)
        }
        // One closure for every responder (not one per request); only model requests carry a ticket.
        server.onResponseComplete = { [unowned self] r in self.responseEnded(r) }
    }

    func record(_ req: HTTPRequest, _ r: HTTPResponder) {
        requestCount += 1
        lastRequest = (req.head.path, Array(req.body))
        r.context = LogTicket(seq: log.append(req, at: r.startedAt))
    }

    func noteFault(_ r: HTTPResponder, _ label: String) {
        guard let ticket = r.context as? LogTicket else { return }
        log.update(ticket.seq) { $0.fault = label }
    }

    /// Drops the connection with no further bytes, and logs it as the mock's doing.
    func drop(_ r: HTTPResponder) {
        markDropped(r)
        r.abortConnection()
    }

    func markDropped(_ r: HTTPResponder) {
        (r.context as? LogTicket)?.droppedOnPurpose = true
    }

    /// Called once per response, finished or abandoned. A connection still open here saw the whole
    /// response: when the client leaves first, the connection is marked closed before the
    /// responder hears of it (`HTTPServerConnection.connectionDidClose`).
    private func responseEnded(_ r: HTTPResponder) {
        guard let ticket = r.context as? LogTicket else { return }
        let outcome: RequestLog.Outcome = ticket.droppedOnPurpose ? .reset : r.isClientConnected ? .complete : .disconnected
        log.update(ticket.seq) { $0.outcome = outcome }
    }
}
