import HTTP
import JSONCore
import Reactor

/// The mock upstream, with the providers' exact framing and request checks (auth header, required
/// fields, roles). Tests and benches only. Model routes:
/// - OpenAI `POST /v1/chat/completions` (`Authorization: Bearer`);
/// - Azure OpenAI `POST /openai/deployments/{deployment}/chat/completions?api-version=…`
///   (`api-key`; Azure's 401/404 bodies; a prompt-filter chunk before the role chunk);
/// - OpenAI-compatible `POST /compat/v1/chat/completions` (keyless; refuses `developer` and
///   `max_completion_tokens`);
/// - Anthropic `POST /v1/messages`; Gemini `POST /v1beta/models/{model}:streamGenerateContent?alt=sse`
///   (and `/v1/models/…`, `:generateContent`).
/// Answers are steered by `[mock …]` in the prompt (`MockDirectives`), or per deployment at runtime:
/// gateway tests point several deployments at one mock, each sending its own `X-Mock-Tag`.
/// Test aids:
/// - `GET /health`, `GET /last-request`;
/// - `GET /requests[?tag=T]`, `DELETE /requests`: the last model requests with their tag, arrival
///   time, fault and outcome (`complete`, `disconnected` when the client left first, …; `RequestLog`);
/// - `PUT /faults/{tag}` with `{"status": 503, "retry_after": "2", "times": 1}` or
///   `{"kind": "reset" | "midstream" | "slow_first" | "hang", …}`: a fault for every model request
///   carrying that tag, in place of the prompt's `fault=` (`FaultRule`); `GET /faults` lists them,
///   `DELETE /faults/{tag}` and `DELETE /faults` remove them.
final class MockServer {
    struct Options {
        var defaults = MockDirectives()
        /// When set, the API key every request must carry; otherwise any non-empty key passes.
        var requiredKey: String?
    }

    let loop: EventLoop
    let server: HTTPServer
    private let router = Router()
    let options: Options
    private var counter = 0
    /// Streams in progress, kept alive here: their timers hold them only weakly.
    private var streams: [ObjectIdentifier: MockStream] = [:]
    var activeStreams: Int { streams.count }
    private(set) var completedStreams = 0
    /// Test aid: how many model requests arrived, and the last one as received (path and body),
    /// served by `GET /last-request` so tests can check what a relay sent upstream.
    var requestCount = 0
    var lastRequest: (path: String, body: [UInt8])?
    var log = RequestLog(capacity: 200)
    /// Set by tests at runtime (`PUT /faults/{tag}`), read on every model request.
    var faults = FaultTable()

    init(loop: EventLoop, listeningFD: Int32, options: Options) throws(SystemError) {
        self.loop = loop
        self.options = options
        var limits = HTTPParserLimits()
        limits.maxBodyBytes = 16 * 1024 * 1024
        server = HTTPServer(loop: loop, config: HTTPServerConfig(parserLimits: limits, idleTimeoutSeconds: 300, serverName: "mock-upstream"), router: router)
        router.add(.post, "/v1/chat/completions") { [unowned self] req, _, r in self.record(req, r); self.openAIFamily(req, .openAI, r) }
        router.add(.post, "/openai/deployments/{deployment}/chat/completions") { [unowned self] req, p, r in
            self.record(req, r)
            self.openAIFamily(req, .azure(deployment: p["deployment"] ?? ""), r)
        }
        router.add(.post, "/compat/v1/chat/completions") { [unowned self] req, _, r in self.record(req, r); self.openAIFamily(req, .compat, r) }
        router.add(.post, "/v1/messages") { [unowned self] req, _, r in self.record(req, r); self.anthropic(req, r) }
        router.add(.post, "/v1beta/models/{action}") { [unowned self] req, p, r in self.record(req, r); self.gemini(req, p["action"] ?? "", r) }
        router.add(.post, "/v1/models/{action}") { [unowned self] req, p, r in self.record(req, r); self.gemini(req, p["action"] ?? "", r) }
        router.add(.get, "/last-request") { [unowned self] _, _, r in
            var h = HTTPHeaders()
            h.add("X-Mock-Requests", String(self.requestCount))
            guard let last = self.lastRequest else { return r.respond(status: 404, headers: h, body: Array("no request yet".utf8)) }
            h.add("Content-Type", "application/json")
            h.add("X-Mock-Path", last.path)
            r.respond(status: 200, headers: h, body: last.body)
        }
        router.add(.get, "/health") { [unowned self] _, _, r in
            let body = #"{"status":"ok","active_streams":\#(self.activeStreams),"completed_streams":\#(self.completedStreams),"requests":\#(self.requestCount),"cpu_ns":\#(ProcessStats.cpuNanos),"rss_bytes":\#(ProcessStats.residentBytes)}"#
            r.respondJSON(status: 200, Array(body.utf8))
        }
        addRequestLogRoutes(router)
        addFaultRoutes(router)
        try server.start(listeningFD: listeningFD)
    }

    func nextID() -> String {
        counter += 1
        return "mock\(counter)"
    }

    func keyOK(_ key: String?) -> Bool {
        guard let key, !key.isEmpty else { return false }
        return options.requiredKey.map { $0 == key } ?? true
    }

    func bearer(_ req: HTTPRequest) -> String? {
        guard let a = req.head.headers["Authorization"], a.hasPrefix("Bearer ") else { return nil }
        return String(a.dropFirst(7))
    }

    func run(_ r: HTTPResponder, _ format: MockWireFormat, _ asked: MockDirectives, model: String, prompt words: Int, stream: Bool) {
        guard let d = applyFaults(r, format, asked, stream: stream) else { return }
        if let f = d.fault, let status = Int(f.rawValue) {
            answerError(r, format, status: status, rule: nil)
            return
        }
        if !stream {
            let tokens = d.echo.map(MockStream.splitWords) ?? (0..<d.tokens).map { MockText.token($0, stamp: false, nowNanos: 0) }
            var h = HTTPHeaders()
            h.add("Content-Type", "application/json")
            let answer = {
                r.respond(status: 200, headers: h, body: format.complete(text: tokens.joined(), model: model, promptTokens: words, completionTokens: tokens.count))
            }
            let wait = d.silenceMs + d.firstDelayMs + d.delayMs * Double(max(0, tokens.count - 1))
            if wait > 0 { answerLater(r, afterMs: wait, answer) } else { answer() }
            return
        }
        var key: ObjectIdentifier?
        let s = MockStream(responder: r, loop: loop, format: format, directives: d, model: model, promptTokens: words) { [unowned self] in
            if let key { self.streams[key] = nil }
            self.completedStreams += 1
        }
        s.onReset = { [unowned self] in self.markDropped(r) }
        key = ObjectIdentifier(s)
        streams[ObjectIdentifier(s)] = s
        s.start()
    }

    /// A non-streamed answer after a wait that ends early if the client leaves: a gateway that
    /// gave up on a slow deployment must not leave a timer answering a closed connection, and
    /// the log must show it left.
    private func answerLater(_ r: HTTPResponder, afterMs ms: Double, _ answer: @escaping () -> Void) {
        let timer = loop.schedule(afterNanos: UInt64(ms * 1e6)) {
            r.onClientGone = nil
            answer()
        }
        r.onClientGone = { [loop] in loop.cancel(timer) }
    }

    // MARK: Anthropic

    private func anthropic(_ req: HTTPRequest, _ r: HTTPResponder) {
        let fmt = AnthropicFormat(id: "msg_\(nextID())")
        func fail(_ status: Int, _ msg: String) {
            let (h, b) = fmt.httpError(status: status, message: msg)
            r.respond(status: status, headers: h, body: b)
        }
        guard keyOK(req.head.headers["x-api-key"] ?? bearer(req)) else { return fail(401, "invalid x-api-key") }
        guard let version = req.head.headers["anthropic-version"] else { return fail(400, "anthropic-version: header is required") }
        guard version == "2023-06-01" || version == "2026-10-21" else { return fail(400, "anthropic-version: invalid version \(version)") }
        guard let body = try? JSONParser.parse(req.body), body.object != nil else { return fail(400, "invalid JSON body") }
        guard let model = body["model"]?.string else { return fail(400, "model: Field required") }
        guard body["max_tokens"]?.int != nil else { return fail(400, "max_tokens: Field required") }
        if version == "2026-10-21" {
            for p in ["temperature", "top_p", "top_k"] where body[p] != nil {
                return fail(400, "\(p): is not supported with anthropic-version 2026-10-21")
            }
        }
        guard let messages = body["messages"]?.array, !messages.isEmpty else { return fail(400, "messages: at least one message is required") }
        var words = MockText.countWords(MockText.text(of: body["system"]) ?? "")
        var lastUser = ""
        for (i, m) in messages.enumerated() {
            guard let role = m["role"]?.string, role == "user" || role == "assistant" else {
                return fail(400, "messages.\(i).role: Input should be 'user' or 'assistant'")
            }
            guard let t = MockText.text(of: m["content"]) else { return fail(400, "messages.\(i).content: invalid content") }
            words += MockText.countWords(t)
            if role == "user" { lastUser = t }
        }
        run(r, fmt, MockDirectives.parse(lastUser, defaults: options.defaults), model: model, prompt: words, stream: body["stream"]?.bool ?? false)
    }

    // MARK: Gemini

    private func gemini(_ req: HTTPRequest, _ action: String, _ r: HTTPResponder) {
        let fmt = GeminiFormat(responseID: "resp\(nextID())")
        func fail(_ status: Int, _ msg: String) {
            let (h, b) = fmt.httpError(status: status, message: msg)
            r.respond(status: status, headers: h, body: b)
        }
        let parts = action.split(separator: ":", maxSplits: 1)
        guard parts.count == 2 else { return fail(404, "method not found") }
        let model = String(parts[0])
        let method = parts[1]
        guard method == "streamGenerateContent" || method == "generateContent" else { return fail(404, "method \(method) not found") }
        let stream = method == "streamGenerateContent"
        var queryKey: String?
        var altSSE = false
        for item in (req.head.query ?? "").split(separator: "&") {
            if item == "alt=sse" { altSSE = true }
            if item.hasPrefix("key=") { queryKey = String(item.dropFirst(4)) }
        }
        // A bad key is HTTP 400 INVALID_ARGUMENT on Gemini, not 401 (docs/wire-formats.md §4.5.1).
        guard keyOK(req.head.headers["x-goog-api-key"] ?? queryKey) else { return fail(400, "API key not valid. Please pass a valid API key.") }
        if stream && !altSSE { return fail(400, "the mock serves streamGenerateContent with alt=sse only") }
        guard let body = try? JSONParser.parse(req.body), body.object != nil else { return fail(400, "Invalid JSON payload received.") }
        guard let contents = body["contents"]?.array, !contents.isEmpty else { return fail(400, "* GenerateContentRequest.contents: contents is not specified") }
        var words = 0
        var lastUser = ""
        for (i, c) in contents.enumerated() {
            let role = c["role"]?.string ?? "user"
            guard role == "user" || role == "model" else { return fail(400, "Please use a valid role: user, model. (contents[\(i)])") }
            guard let t = MockText.text(of: c["parts"]) else { return fail(400, "contents[\(i)].parts: text parts required") }
            words += MockText.countWords(t)
            if role == "user" { lastUser = t }
        }
        if body["generationConfig"]?["system_instruction"] != nil { return fail(400, "systemInstruction belongs at the top level") }
        run(r, fmt, MockDirectives.parse(lastUser, defaults: options.defaults), model: model, prompt: words, stream: stream)
    }
}
