import HTTP
import JSONCore
import Providers
import Reactor
import Storage

/// The Anthropic-compatible surface: POST /v1/messages and /v1/messages/count_tokens, so
/// Anthropic's SDKs and tools work unchanged with any provider's model behind ChatRelay.
/// Stateless unless the request carries `X-Conversation-Id` (an id, or `new`), as on the OpenAI
/// surface; then the turn is stored.
extension ChatService {
    /// The `anthropic-version` values this surface answers as. The stream and body shapes are the
    /// same for both; sampling values are taken under either, whatever model serves the turn.
    static let anthropicVersions: Set<String> = ["2023-06-01", "2026-10-21"]

    func anthropicMessages(_ req: HTTPRequest, _ r: HTTPResponder) {
        guard let preamble = anthropicPreamble(req, r, retry: { [self] in anthropicMessages(req, r) }) else { return }
        let body: AnthropicMessagesBody
        do { body = try AnthropicMessagesBody(preamble.body, defaultModel: defaultModel) } catch {
            return r.respond(error, shape: .anthropic)
        }
        let wire = AnthropicWire(stream: body.stream, model: body.request.model)
        let route: RoutedModel
        switch self.route(body.request.model) {
        case .failure(let e): return respond(e, through: wire, r)
        case .success(let rt): route = rt
        }
        if let e = checkFallbacks(body.fallbacks) { return respond(e, through: wire, r) }
        startTurn(req, r, caller: preamble.caller, wire: wire, route: route, request: body.request, fallbacks: body.fallbacks,
                  system: body.request.system, userText: body.lastUserText, shape: .anthropic,
                  badConversationMessage: "must be a conversation id or 'new'")
    }

    /// `{"input_tokens": N}`: an estimate made here, for every provider (InputTokenEstimate), so
    /// counting costs no upstream call. The model must still be one this gateway serves.
    func anthropicCountTokens(_ req: HTTPRequest, _ r: HTTPResponder) {
        guard let json = anthropicPreamble(req, r, retry: { [self] in anthropicCountTokens(req, r) })?.body else { return }
        let body: AnthropicMessagesBody
        do { body = try AnthropicMessagesBody(json, defaultModel: defaultModel, requireMaxTokens: false) } catch {
            return r.respond(error, shape: .anthropic)
        }
        let route: RoutedModel
        switch self.route(body.request.model) {
        case .failure(let e): return respond(e, through: AnthropicWire(stream: false, model: body.request.model), r)
        case .success(let rt): route = rt
        }
        var request = body.request
        // The catalog model's own system prompt goes upstream when the request has none: it counts.
        if request.system == nil { request.system = route.defaults.system }
        var w = JSONWriter()
        w.beginObject()
        w.field("input_tokens", InputTokenEstimate.count(request, kind: route.deployment.kind))
        w.endObject()
        r.respondJSON(status: 200, w.bytes)
    }

    /// What both routes check first: the key, the version header and a JSON body. Nil when an
    /// error has been answered already.
    private func anthropicPreamble(_ req: HTTPRequest, _ r: HTTPResponder, retry: @escaping () -> Void) -> (caller: Caller, body: JSONValue)? {
        // Anthropic's SDKs read `request-id` into their responses' and errors' `_request_id`.
        // (Once: a route run again after a key refresh comes through here twice.)
        if let id = (r.context as? RequestContext)?.requestID, r.extraHeaders["request-id"] == nil { r.extraHeaders.add("request-id", id) }
        guard let caller = authorize(req, r, shape: .anthropic, retry: retry) else { return nil }
        if let version = req.head.headers["anthropic-version"]?.trimmingSpaces, !ChatService.anthropicVersions.contains(version) {
            // As Anthropic answers an unknown version: a newer one could mean shapes this gateway does not speak.
            r.respond(ClientError.invalid("'\(version)' is not a supported version (use 2023-06-01 or 2026-10-21)", param: "anthropic-version"),
                      shape: .anthropic)
            return nil
        }
        guard let json = jsonBody(req, r, shape: .anthropic) else { return nil }
        return (caller, json)
    }

    private func respond(_ e: ProviderError, through wire: AnthropicWire, _ r: HTTPResponder) {
        let (status, headers, payload) = wire.errorResponse(e)
        r.respond(status: status, headers: headers, body: payload)
    }
}
