import HTTP
import Providers
import Reactor
import Storage

/// Where a turn's messages are kept, when they are kept: the stored conversation the answer
/// belongs to. Absent for stateless requests (the OpenAI surface without X-Conversation-Id).
struct TurnStorage {
    let store: ChatStore
    let owner: String
    /// What `beginTurn` stored, kept until the answer is final in case the database lost it; of
    /// the history only the new user message is kept (the rest went upstream already).
    let start: TurnStart

    init(store: ChatStore, owner: String, start: TurnStart) {
        self.store = store
        self.owner = owner
        var kept = start
        if kept.history.count > 1 { kept.history = Array(kept.history.suffix(1)) }
        self.start = kept
    }
}

/// One chat turn from request to stored answer. It owns the upstream stream, the ping timer and
/// the client response, and links them: the client's backpressure pauses the upstream, a client
/// that leaves cancels it (or not, by policy), and the answer is stored before the closing frame
/// goes out, so a client that reads the conversation right after `done` sees it.
final class ChatTurn: UpstreamStreamDelegate {
    private unowned let service: ChatService
    private let responder: HTTPResponder
    private var wire: ClientWire
    private let route: RoutedModel
    private let storage: TurnStorage?
    private let cancelOnDisconnect: Bool
    private let context: RequestContext?
    private var upstream: UpstreamStream?

    /// The answer so far: the one copy kept, for storage (and for non-streamed responses).
    private var answer = ""
    private var usage: Usage?
    private var finish: FinishReason?
    private var tokens = 0
    private var firstTokenAt: UInt64?
    private let startedAt: UInt64

    private var headersSent = false
    private var upstreamAccepted = false
    private var clientGone = false
    private var ended = false
    private var pingTimer: TimerID?
    private var headerHoldTimer: TimerID?

    init(service: ChatService, responder: HTTPResponder, wire: ClientWire, route: RoutedModel,
         storage: TurnStorage?, cancelOnDisconnect: Bool) {
        self.service = service
        self.responder = responder
        self.wire = wire
        self.route = route
        self.storage = storage
        self.cancelOnDisconnect = cancelOnDisconnect
        context = responder.context as? RequestContext
        startedAt = responder.startedAt
        context?.model = route.name
        context?.provider = route.deployment.kind.rawValue
        context?.deployment = route.deployment.id
    }

    /// Starts the upstream call for `request` (its messages are the whole history).
    func start(_ request: ChatRequest) {
        responder.onClientGone = { [unowned self] in self.clientDidLeave() }
        responder.onWritabilityChanged = { [unowned self] writable in
            if writable { self.upstream?.resume() } else { self.upstream?.pause() }
        }
        context?.timing.upstreamStarted(streamed: wire.isStreaming)
        switch service.makeUpstream(request, route: route, delegate: self) {
        case .success(let u):
            upstream = u
        case .failure(let e):
            service.upstreamMetrics.ended(route.provider, error: e, accepted: false)
            fail(e)
            return
        }
        guard wire.isStreaming else { return }
        // Wait briefly for the provider's status so a refusal (429, 401…) or a failed connect can
        // still be answered with the matching HTTP status; then headers go out and pings keep
        // proxies patient while the first token is awaited.
        headerHoldTimer = service.loop.schedule(afterMillis: service.headerHoldMillis) { [weak self] in
            self?.headerHoldTimer = nil
            self?.sendHeaders()
        }
    }

    private var outcomeBase: TurnOutcome {
        let now = monotonicNanos()
        return TurnOutcome(
            messageID: storage?.start.assistantMessageID, conversationID: storage?.start.conversation.id,
            model: route.name, provider: route.deployment.kind.rawValue, deployment: route.deployment.id, finish: finish, usage: usage,
            ttftMs: firstTokenAt.map { Int(($0 - startedAt) / 1_000_000) },
            latencyMs: Int((now - startedAt) / 1_000_000))
    }

    private func sendHeaders() {
        guard !headersSent, !ended, wire.isStreaming, !clientGone else { return }
        if let t = headerHoldTimer { service.loop.cancel(t); headerHoldTimer = nil }
        writeHead()
        schedulePing()
    }

    /// The response head and the opening frame.
    private func writeHead() {
        headersSent = true
        responder.beginStream(status: 200, headers: wire.streamHeaders())
        service.frame.removeAll(keepingCapacity: true)
        wire.start(outcomeBase, into: &service.frame)
        responder.write(service.frame)
    }

    private func schedulePing() {
        pingTimer = service.loop.schedule(afterSeconds: service.pingSeconds) { [weak self] in
            guard let self, !self.ended, !self.clientGone else { return }
            self.responder.write(ChatTurn.pingFrame)
            self.schedulePing()
        }
    }

    private static let pingFrame = Array(": ping\n\n".utf8)

    // MARK: Upstream events

    func upstreamDidStart() {
        // The provider accepted the request: the client's head goes out now, and from here
        // failures (including a first-token timeout) travel as an `error` event.
        upstreamAccepted = true
        context?.timing.upstreamAnswered()
        sendHeaders()
    }

    func upstreamDidReceive(_ event: StreamEvent) {
        switch event {
        case .text(let text):
            guard !text.isEmpty else { return }
            if firstTokenAt == nil {
                let now = monotonicNanos()
                firstTokenAt = now
                service.upstreamMetrics.firstToken(route.provider, afterNanos: now &- startedAt)
            }
            tokens += 1
            if !clientGone { service.upstreamMetrics.tokenRelayed(route.provider) }
            answer += text
            guard wire.isStreaming, !clientGone else { return }
            if !headersSent { sendHeaders() }
            service.frame.removeAll(keepingCapacity: true)
            wire.token(text, into: &service.frame)
            responder.write(service.frame)
            // Backpressure: stop the upstream until the client drains (onWritabilityChanged).
            if !responder.isWritable { upstream?.pause() }
        case .usage(let u):
            usage = u
        case .finish(let f):
            finish = f
        case .done, .error:
            break  // delivered through upstreamDidEnd
        }
    }

    func upstreamDidEnd(_ error: ProviderError?) {
        upstream = nil
        context?.timing.upstreamEnded()
        service.upstreamMetrics.ended(route.provider, error: error, accepted: upstreamAccepted)
        if let error {
            fail(error)
        } else {
            complete(status: .complete, error: nil)
        }
    }

    // MARK: Ending

    private func clientDidLeave() {
        clientGone = true
        cancelTimers()
        guard !ended else { return }
        if cancelOnDisconnect || storage == nil {
            if upstream != nil { service.upstreamMetrics.cancelled(route.provider) }
            upstream?.cancel()
            upstream = nil
            complete(status: .cancelled, error: nil)
        }
        // Otherwise the answer goes on upstream and is stored complete when it ends; a transfer
        // paused for this client's backpressure must not stay paused now nobody reads.
        upstream?.resume()
    }

    /// The server is shutting down: end the stream with an error event and store what arrived.
    func abort(_ message: String) {
        guard !ended else { return }
        if upstream != nil { service.upstreamMetrics.cancelled(route.provider) }
        upstream?.cancel()
        upstream = nil
        fail(ProviderError(.upstreamError, message))
    }

    private func fail(_ error: ProviderError) {
        context?.error = error.apiType
        // Once response bytes are out (or nobody is listening), the error travels as a frame.
        guard wire.isStreaming, !headersSent, !clientGone, !ended else {
            complete(status: .error, error: error)
            return
        }
        // Nothing has been sent yet: answer with the error's own status (429, 502, …).
        ended = true
        cancelTimers()
        finalizeStorage(status: .error, error: error.message) { [self] in
            let (status, headers, body) = wire.errorResponse(error)
            responder.respond(status: status, headers: headers, body: body)
            finished()
        }
    }

    /// Stores the answer, then sends the closing frame (done or error) and ends the response.
    private func complete(status: MessageStatus, error: ProviderError?) {
        guard !ended else { return }
        ended = true
        cancelTimers()
        context?.ttftMs = firstTokenAt.map { Double($0 - startedAt) / 1e6 }
        context?.tokens = tokens
        finalizeStorage(status: status, error: error?.message) { [self] in
            guard !clientGone else { finished(); return }
            let outcome = outcomeBase
            if !wire.isStreaming {
                if let error {
                    let (st, h, body) = wire.errorResponse(error)
                    responder.respond(status: st, headers: h, body: body)
                } else {
                    var h = HTTPHeaders()
                    h.add("Content-Type", "application/json")
                    responder.respond(status: 200, headers: h, body: wire.completeResponse(outcome, text: answer))
                }
                finished()
                return
            }
            if !headersSent { writeHead() }
            service.frame.removeAll(keepingCapacity: true)
            if let error { wire.streamError(error, into: &service.frame) } else { wire.finish(outcome, into: &service.frame) }
            responder.write(service.frame)
            responder.endStream()
            finished()
        }
    }

    private func finalizeStorage(status: MessageStatus, error: String?, then next: @escaping () -> Void) {
        guard let storage else { next(); return }
        let o = outcomeBase
        let u = usage.map { TokenUsage(promptTokens: $0.promptTokens, completionTokens: $0.completionTokens, totalTokens: $0.totalTokens) }
        // The write captures values only, so it can be repeated after this turn is gone.
        let store = storage.store, owner = storage.owner, turn = storage.start, id = turn.assistantMessageID, text = answer
        let finishValue = finish?.value
        let deployment = route.deployment.id, upstreamModel = route.model
        let write: ChatService.AnswerWrite = { done in
            store.finalizeAssistantMessage(owner: owner, id: id, text: text, status: status, finishReason: finishValue,
                                           usage: u, ttftMs: o.ttftMs, latencyMs: o.latencyMs, error: error,
                                           turn: turn, deployment: deployment, upstreamModel: upstreamModel, completion: done)
        }
        write { [self] result in
            if case .failure(let e) = result {
                if ChatService.isTransient(e) {
                    // The database is away: the client still gets its answer now, and the write
                    // is repeated until the database is back (data that must never be lost).
                    service.logger.warn("database unavailable; the answer will be stored when it is back",
                                        [("message_id", .string(id)), ("error", .string(e.description))])
                    service.storeLater(write, messageID: id)
                } else {
                    service.logger.error("could not store the answer", [("message_id", .string(id)), ("error", .string(e.description))])
                }
            }
            next()
        }
    }

    private func cancelPing() {
        if let t = pingTimer { service.loop.cancel(t); pingTimer = nil }
    }

    private func cancelTimers() {
        cancelPing()
        if let t = headerHoldTimer { service.loop.cancel(t); headerHoldTimer = nil }
    }

    private func finished() {
        responder.onClientGone = nil
        responder.onWritabilityChanged = nil
        service.turnFinished(self)
    }
}
