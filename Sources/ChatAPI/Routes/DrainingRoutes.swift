import HTTP

extension ErrorShape {
    /// Anthropic's surface is /v1/messages…, OpenAI's the rest of /v1/; everything else speaks
    /// docs/API.md's shape.
    static func forPath(_ path: String) -> ErrorShape {
        if path == "/v1/messages" || path.hasPrefix("/v1/messages/") { return .anthropic }
        return path.hasPrefix("/v1/") ? .openAI : .native
    }
}

/// Requests that arrive while the worker drains after SIGTERM. Nothing is done for them, so a
/// load balancer may safely send them to another instance (the 503 says so, with `Retry-After`);
/// health tells probes the instance is going away. The server closes each connection after.
extension ChatService {
    func refuseWhileDraining(_ req: HTTPRequest, _ r: HTTPResponder, version: String, startedAt: UInt64, worker: Int) {
        let m = req.head.method
        if req.head.path == "/api/v1/health" && (m == .get || m == .head) {
            health(r, version: version, startedAt: startedAt, worker: worker, draining: true)
            return
        }
        var h = HTTPHeaders()
        h.add("Retry-After", "1")
        r.respond(ClientError(status: 503, type: "overloaded", message: "the server is shutting down", param: nil),
                  shape: .forPath(req.head.path), headers: h)
    }
}
