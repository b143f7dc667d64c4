import HTTP
import Reactor

/// The OpenAI-format routes: OpenAI itself, Azure OpenAI and OpenAI-compatible servers. Auth and
/// URL checks differ per route (`OpenAIRoute`); the body checks are `OpenAIRequestCheck`.
extension MockServer {
    func openAIFamily(_ req: HTTPRequest, _ route: OpenAIRoute, _ r: HTTPResponder) {
        let fmt0 = OpenAIFormat(id: "chatcmpl-\(nextID())", created: wallClockMillis() / 1000, includeUsage: false)
        func unauthorized() {
            let (h, b) = fmt0.httpError(status: 401, message: "Incorrect API key provided.")
            r.respond(status: 401, headers: h, body: b)
        }
        var azure = false
        switch route {
        case .openAI:
            guard keyOK(bearer(req)) else { return unauthorized() }
        case .azure:
            // Azure reads only `api-key`; a bearer token alone is an unknown subscription.
            guard keyOK(req.head.headers["api-key"]) else {
                let (h, b) = AzureErrors.accessDenied()
                return r.respond(status: 401, headers: h, body: b)
            }
            guard hasQueryValue(req.head.query, "api-version") else {
                let (h, b) = AzureErrors.resourceNotFound()
                return r.respond(status: 404, headers: h, body: b)
            }
            azure = true
        case .compat:
            // Keyless, but a malformed Authorization header is still refused.
            if req.head.headers["Authorization"] != nil, (bearer(req) ?? "").isEmpty { return unauthorized() }
        }
        let checked: OpenAIChatRequest
        do throws(OpenAIRefusal) {
            checked = try OpenAIRequestCheck.check(req.body, route: route)
        } catch {
            var h = HTTPHeaders()
            h.add("Content-Type", "application/json; charset=utf-8")
            return r.respond(status: 400, headers: h, body: fmt0.badRequest(message: error.message, param: error.param, code: error.code))
        }
        let d = MockDirectives.parse(checked.lastUser, defaults: options.defaults)
        var fmt = OpenAIFormat(id: fmt0.id, created: fmt0.created, includeUsage: checked.includeUsage)
        fmt.quirks = d.quirks
        fmt.promptFilterChunk = azure
        run(r, fmt, d, model: checked.model, prompt: checked.promptWords, stream: checked.stream)
    }

    /// Whether the query has `name=<non-empty>`.
    private func hasQueryValue(_ query: String?, _ name: String) -> Bool {
        (query ?? "").split(separator: "&").contains { item in
            item.hasPrefix(name + "=") && item.count > name.count + 1
        }
    }
}
