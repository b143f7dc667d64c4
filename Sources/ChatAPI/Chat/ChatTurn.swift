import HTTP
import Providers
import Reactor
import Storage

/// Where a turn's messages are kept, when they are kept: the stored conversation the answer
/// belongs to. Absent for stateless requests (the OpenAI surface without X-Conversation-Id).
/// A class: inline, the optional took a few hundred bytes of every turn, stored or not.
final class TurnStorage {
    let store: ChatStore
    let owner: String
    /// What `beginTurn` stored, kept until the answer is final in case the database lost it; of
    /// the history only the new user message is kept (the rest went upstream already).
    let start: TurnStart
    /// True for one run of a multi-model turn: its final write is `finalizeRun`.
    let isRun: Bool

    init(store: ChatStore, owner: String, start: TurnStart, isRun: Bool = false) {
        self.store = store
        self.owner = owner
        self.isRun = isRun
        var kept = start
        if kept.history.count > 1 { kept.history = Array(kept.history.suffix(1)) }
        self.start = kept
    }
}

/// What a multi-model turn hears from each of its runs.
protocol RunObserver: AnyObject {
    /// The run's first token: in `fastest` mode, the winner.
    func runDidAnswer(_ run: ChatTurn)
    /// The run is over and stored; `selected` when it became the answer its turn continues from.
    func runDidFinish(_ run: ChatTurn, status: MessageStatus, selected: Bool)
}

/// One chat turn from request to stored answer. It owns the upstream stream, the ping timer and
/// the client response, and links them: the client's backpressure pauses the upstream, a client
/// that leaves cancels it (or not, by policy), and the answer is stored before the closing frame
/// goes out, so a client that reads the conversation right after `done` sees it.
final class ChatTurn: ResilientUpstreamDelegate {
    private unowned let service: ChatService
    private let responder: any TurnOutput
    /// The multi-model turn this is a run of; held (it holds its runs too) until this run ends.
    var observer: RunObserver?
    private var wire: ClientWire
    /// `wire.isStreaming`, read once: reading it through the existential on every token copied
    /// the whole wire (its strings and buffers retained and released).
    private let streaming: Bool
    /// The route answering: the one admitted until an attempt commits, then that attempt's.
    private var route: RoutedModel
    /// The request's own fallback models, replacing the catalog's for this turn.
    private let fallbacks: [String]?
    private let storage: TurnStorage?
    /// `storage != nil`, for the per-token check: testing the optional copied it (its strings
    /// retained and released) on every token.
    private let stored: Bool
    /// Who pays: usage is billed to them, and their key's stream slot is held until the end.
    private let caller: Caller
    private let admission: Admission
    private var request: SharedRequest?
    /// Text events of attempts abandoned midway (restarted elsewhere): generated, so billed.
    private var discardedTokens = 0
    private var billed = false
    /// Clients following this answer from elsewhere in it (reconnected with `Last-Event-ID`).
    private var followers: [ResumedStream] = []
    /// How much of `answer` the progress writes have saved (UTF-8 bytes), and whether the next
    /// one replaces the stored text (after a restart) rather than appending.
    private var savedBytes = 0
    private var replaceSaved = false
    private var restarts = 0
    /// The worker's progress row current when this answer began: rows from here on may hold its text.
    private(set) var progressFirstSeq: Int64 = .max
    private let cancelOnDisconnect: Bool
    private let context: RequestContext?
    private var upstream: TurnUpstream?
    /// Set when this request may share its answer (coalescing, the response cache).
    private let cachePolicy: CachePolicy?
    /// Read from an answer another request paid for, or from the cache: billed at zero.
    private var freeOfCharge = false
    private var servedFromCache = false
    private var attempts: [AttemptRecord] = []

    /// The answer so far: the one copy kept, for storage (and for non-streamed responses); empty
    /// for a stream that is not stored.
    private var answer = ""
    private var usage: Usage?
    private var finish: FinishReason?
    private var tokens = 0
    private var firstTokenAt: UInt64?
    private let startedAt: UInt64
    /// What the answer cost, once billed.
    private var costPico: Int64?
    private(set) var status: MessageStatus = .streaming
    private var selectedRun = false

    private var headersSent = false
    private var upstreamAccepted = false
    private var clientGone = false
    private var ended = false
    private var pingTimer: TimerID?
    private var headerHoldTimer: TimerID?

    init(service: ChatService, responder: any TurnOutput, wire: ClientWire, route: RoutedModel, fallbacks: [String]? = nil,
         storage: TurnStorage?, caller: Caller, admission: Admission, cancelOnDisconnect: Bool, cache: CachePolicy? = nil) {
        self.service = service
        cachePolicy = cache
        self.caller = caller
        self.admission = admission
        self.responder = responder
        self.wire = wire
        streaming = wire.isStreaming
        self.route = route
        self.fallbacks = fallbacks
        self.storage = storage
        stored = storage != nil
        self.cancelOnDisconnect = cancelOnDisconnect
        context = responder.context as? RequestContext
        startedAt = responder.startedAt
        context?.model = route.name
        context?.provider = route.deployment.kind.rawValue
        context?.deployment = route.deployment.id
    }

    /// Starts the upstream call for `request` (its messages are the whole history).
    func start(_ request: ChatRequest) {
        // A run its multi-model turn stopped before it began (a `fastest` race already won).
        guard !ended else { return }
        let request = SharedRequest(request)
        self.request = request
        if let id = storage?.start.assistantMessageID {
            service.liveAnswers[id] = self
            progressFirstSeq = service.progressWriter.nextSeq
        }
        responder.onClientGone = { [unowned self] in self.clientDidLeave() }
        responder.onWritabilityChanged = { [unowned self] writable in
            if writable { self.upstream?.resume() } else { self.upstream?.pause() }
        }
        context?.timing.upstreamStarted(streamed: streaming)
        if responder.isShared { headersSent = true }
        if let policy = cachePolicy {
            let route = self.route, fallbacks = self.fallbacks
            service.responseCache.share(CacheKey(request.value, model: route.name), policy: policy, model: route.name,
                                        then: { [self] answer, pays in
                guard !ended else { return }
                freeOfCharge = !pays
                servedFromCache = answer.fromCache || (!pays && answer.ended)
                begin(AnswerCursor(answer: answer, pays: pays, delegate: self))
            }, live: { [service] answer in
                ResilientUpstream(service: service, request: request, route: route, requestFallbacks: fallbacks,
                                  restartAllowed: false, delegate: answer)
            })
            return
        }
        begin(ResilientUpstream(service: service, request: request, route: route, requestFallbacks: fallbacks,
                                restartAllowed: wire.canRestart, delegate: self))
    }

    private func begin(_ u: TurnUpstream) {
        upstream = u
        u.start()
        // Nothing could be started (every deployment refused): the turn has already ended.
        guard !ended, streaming, !responder.isShared else { return }
        // Wait briefly for the provider's status so a refusal (429, 401…) or a failed connect can
        // still be answered with the matching HTTP status; then headers go out and pings keep
        // proxies patient while the first token is awaited.
        holdHeaders()
    }

    /// Waits for the provider's status before the head goes out; while a retry waits out its
    /// backoff the wait goes on, so a turn whose every attempt is refused still gets the refusal's
    /// own status (429, 503…) rather than a 200 and an error event.
    private func holdHeaders(millis: Int64? = nil) {
        headerHoldTimer = service.loop.schedule(afterMillis: millis ?? service.headerHoldMillis) { [weak self] in
            guard let self else { return }
            self.headerHoldTimer = nil
            guard let u = self.upstream else { return self.sendHeaders() }
            if u.isWaitingToRetry { return self.holdHeaders() }
            // A retry that has just started gets the whole wait for its own status too.
            let sinceAttempt = Int64((monotonicNanos() &- u.lastAttemptStartedAt) / 1_000_000)
            if sinceAttempt < self.service.headerHoldMillis {
                return self.holdHeaders(millis: self.service.headerHoldMillis - sinceAttempt)
            }
            self.sendHeaders()
        }
    }

    private var outcomeBase: TurnOutcome {
        let now = monotonicNanos()
        return TurnOutcome(
            messageID: storage?.start.assistantMessageID, conversationID: storage?.start.conversation.id,
            model: route.name, provider: route.deployment.kind.rawValue, deployment: route.deployment.id,
            attempts: attempts, finish: finish, usage: usage,
            ttftMs: firstTokenAt.map { Int(($0 - startedAt) / 1_000_000) },
            latencyMs: Int((now - startedAt) / 1_000_000), status: status, costPico: costPico, cached: servedFromCache)
    }

    private func sendHeaders() {
        guard !headersSent, !ended, streaming, !clientGone else { return }
        context?.timing.attempts = upstream?.attemptsStarted ?? context?.timing.attempts ?? 0
        if let t = headerHoldTimer { service.loop.cancel(t); headerHoldTimer = nil }
        writeHead()
        schedulePing()
    }

    /// The response head and the opening frame.
    private func writeHead() {
        headersSent = true
        responder.beginStream(status: 200, headers: wire.streamHeaders())
        let outcome = outcomeBase
        responder.writeFrame { wire.start(outcome, into: &$0) }
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
                observer?.runDidAnswer(self)
                // A `fastest` race may have ended this run in that call (it lost to a token that
                // arrived in the same pass).
                if ended { return }
            }
            tokens += 1
            if !clientGone { service.upstreamMetrics.tokenRelayed(route.provider) }
            // Kept only where it is read again: storage (and resuming clients, which need it), or a
            // non-streamed response. A stateless stream would hold its whole text for nothing.
            if stored || !streaming { answer += text }
            if stored { service.progressWriter.schedule() }
            if !followers.isEmpty {
                let n = text.unicodeScalars.count
                for f in followers { f.send(text, scalarCount: n) }
            }
            guard streaming, !clientGone else { return }
            if !headersSent { sendHeaders() }
            // Encoded once, into the connection's outbound buffer. Backpressure needs nothing
            // here: crossing the high watermark calls onWritabilityChanged during this write,
            // which pauses the upstream.
            responder.writeFrame { wire.token(text, into: &$0) }
        case .usage(let u):
            usage = u
        case .finish(let f):
            finish = f
        case .done, .error:
            break  // delivered through upstreamDidEnd
        }
    }

    func upstreamDidCommit(_ route: RoutedModel) {
        self.route = route
        context?.model = route.name
        context?.provider = route.deployment.kind.rawValue
        context?.deployment = route.deployment.id
    }

    func upstreamWillRestart(after error: ProviderError, on next: RoutedModel) {
        // Nothing of the failed answer is kept: the client is told, and the stored text starts over.
        answer = ""
        savedBytes = 0
        replaceSaved = true
        restarts += 1
        for f in followers { f.restart(reason: error.message, type: error.apiType, model: next.name, deployment: next.deployment.id) }
        discardedTokens += tokens
        tokens = 0
        usage = nil
        finish = nil
        route = next
        guard streaming, headersSent, !clientGone, !ended else { return }
        responder.writeFrame { wire.restart(error, model: next.name, deployment: next.deployment.id, into: &$0) }
    }

    func upstreamDidEnd(_ error: ProviderError?) {
        takeAttempts()
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

    /// The attempts so far, for the closing frame, storage, Server-Timing and the log line.
    private func takeAttempts() {
        guard let u = upstream else { return }
        attempts = u.attempts
        context?.timing.attempts = u.attemptsStarted
        if attempts.count > 1 || attempts.contains(where: { $0.outcome != .ok }) {
            context?.attempts = AttemptRecord.summary(attempts)
        }
    }

    private func clientDidLeave() {
        clientGone = true
        cancelTimers()
        guard !ended else { return }
        // Waiting out a backoff or racing a hedge for nobody: all of it stops at once.
        let idle = upstream.map { $0.isWaitingToRetry || $0.isHedging } ?? false
        if cancelOnDisconnect || storage == nil || idle {
            if upstream != nil { service.upstreamMetrics.cancelled(route.provider) }
            upstream?.cancel()
            takeAttempts()
            upstream = nil
            complete(status: .cancelled, error: nil)
        }
        // Otherwise the answer goes on upstream and is stored complete when it ends; a transfer
        // paused for this client's backpressure must not stay paused now nobody reads.
        upstream?.resume()
    }

    /// A multi-model turn stops this run (it lost a `fastest` race): the upstream is cancelled at
    /// once and what arrived is stored as `cancelled`.
    func cancelRun() {
        guard !ended else { return }
        if upstream != nil { service.upstreamMetrics.cancelled(route.provider) }
        upstream?.cancel()
        takeAttempts()
        upstream = nil
        complete(status: .cancelled, error: nil)
    }

    /// The server is shutting down: end the stream with an error event and store what arrived.
    func abort(_ message: String) {
        guard !ended else { return }
        if upstream != nil { service.upstreamMetrics.cancelled(route.provider) }
        upstream?.cancel()
        takeAttempts()
        upstream = nil
        fail(ProviderError(.upstreamError, message))
    }

    private func fail(_ error: ProviderError) {
        bill()
        context?.error = error.apiType
        // Once response bytes are out (or nobody is listening), the error travels as a frame.
        guard streaming, !headersSent, !clientGone, !ended else {
            complete(status: .error, error: error)
            return
        }
        // Nothing has been sent yet: answer with the error's own status (429, 502, …).
        ended = true
        self.status = .error
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
        bill()
        ended = true
        self.status = status
        cancelTimers()
        context?.ttftMs = firstTokenAt.map { Double($0 - startedAt) / 1e6 }
        context?.tokens = tokens
        finalizeStorage(status: status, error: error?.message) { [self] in
            guard !clientGone else { finished(); return }
            let outcome = outcomeBase
            if !streaming {
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
            responder.writeFrame { out in
                if let error { wire.streamError(error, into: &out) } else { wire.finish(outcome, into: &out) }
            }
            responder.endStream()
            finished()
        }
    }

    private func finalizeStorage(status: MessageStatus, error: String?, then next: @escaping () -> Void) {
        guard let storage else { next(); return }
        let o = outcomeBase
        let u = usage.map { TokenUsage(promptTokens: $0.promptTokens, completionTokens: $0.completionTokens, totalTokens: $0.totalTokens) }
        // Values only, so the write can be repeated (or journaled) after this turn is gone.
        var answer = PendingAnswer(owner: storage.owner, messageID: storage.start.assistantMessageID, text: self.answer, status: status,
                                   finishReason: finish?.value, usage: u, ttftMs: o.ttftMs, latencyMs: o.latencyMs, error: error,
                                   model: route.name, deployment: route.deployment.id, upstreamModel: route.model,
                                   attemptsJSON: attempts.isEmpty ? nil : AttemptRecord.json(attempts), turn: storage.start)
        answer.cached = servedFromCache
        answer.isRun = storage.isRun
        answer.runCostUSD = costPico.map(USD.format)
        let id = answer.messageID
        answer.store(in: storage.store, selected: { [weak self] in self?.selectedRun = $0 }) { [self] result in
            finishFollowers(status: status, error: error)
            switch result {
            case .success:
                service.progressWriter.answerEnded(id)
                next()
            case .failure(let e) where ChatService.isTransient(e):
                // The database is away: the answer is kept (journaled) and written when it is
                // back; the client gets its closing frame once the answer is kept.
                service.logger.warn("database unavailable; the answer will be stored when it is back",
                                    [("message_id", .string(id)), ("error", .string(e.description))])
                service.keepUntilStored(answer, then: next)
            case .failure(let e):
                service.logger.error("could not store the answer", [("message_id", .string(id)), ("error", .string(e.description))])
                next()
            }
        }
    }

    /// What the answer used, however it ended (finished, cancelled, disconnected, failed midway):
    /// the provider's counts where it sent them, else counted here and flagged as estimated.
    /// Into the ledger, the key's token and budget windows, and the deployment's tokens.
    private func bill() {
        guard !billed else { return }
        billed = true
        if freeOfCharge {
            // No upstream call of its own: a request in the ledger, with no tokens and no cost.
            costPico = 0
            service.usageLedger.record(TurnUsage(owner: caller.owner, model: route.name, deployment: route.deployment.id,
                                                 promptTokens: 0, completionTokens: 0, costPico: 0, estimated: false))
            service.keyLimiter.finished(admission, key: caller.key, tokens: 0, costPico: 0)
            return
        }
        let generated = upstreamAccepted || tokens > 0 || discardedTokens > 0
        var estimated = false
        let prompt: Int64
        if let p = usage?.promptTokens {
            prompt = Int64(p)
        } else if generated, let request {
            prompt = Int64(InputTokenEstimate.count(request.value, kind: route.deployment.kind))
            estimated = true
        } else {
            prompt = 0
        }
        var completion: Int64
        if let c = usage?.completionTokens {
            completion = Int64(c)
        } else {
            completion = Int64(tokens)
            if generated { estimated = true }
        }
        if discardedTokens > 0 {
            completion += Int64(discardedTokens)
            estimated = true
        }
        let cost = USD.costPico(prompt: prompt, completion: completion, price: route.deployment.price)
        costPico = cost
        service.usageLedger.record(TurnUsage(owner: caller.owner, model: route.name, deployment: route.deployment.id,
                                             promptTokens: prompt, completionTokens: completion, costPico: cost, estimated: estimated))
        service.keyLimiter.finished(admission, key: caller.key, tokens: prompt + completion, costPico: cost)
        service.deploymentLimits.charge(route.deployment, tokens: prompt + completion)
    }

    private func cancelPing() {
        if let t = pingTimer { service.loop.cancel(t); pingTimer = nil }
    }

    private func cancelTimers() {
        cancelPing()
        if let t = headerHoldTimer { service.loop.cancel(t); headerHoldTimer = nil }
    }

    // MARK: Resuming clients

    /// A client resuming this answer on the worker generating it: what it missed, then every new
    /// piece as it comes (the same bytes positions as the original stream).
    func follow(_ r: HTTPResponder, from characters: Int) {
        guard let id = storage?.start.assistantMessageID else { return }
        let f = ResumedStream(responder: r, messageID: id, characters: characters, loop: service.loop, pingSeconds: service.pingSeconds)
        f.begin()
        f.catchUp(to: answer)
        f.onEnd = { [weak self] f in self?.followers.removeAll { $0 === f } }
        followers.append(f)
    }

    var owner: String? { storage?.owner }

    private func finishFollowers(status: MessageStatus, error: String?) {
        guard !followers.isEmpty, let s = storage else { return }
        let o = outcomeBase
        let a = AnswerProgress(id: s.start.assistantMessageID, conversationID: s.start.conversation.id, content: answer, status: status,
                               finishReason: finish?.value,
                               usage: usage.map { TokenUsage(promptTokens: $0.promptTokens, completionTokens: $0.completionTokens, totalTokens: $0.totalTokens) },
                               error: error, model: o.model, deployment: o.deployment, ttftMs: o.ttftMs, latencyMs: o.latencyMs)
        for f in followers { f.finish(a) }
        followers = []
    }

    /// The text not yet saved for resuming clients elsewhere, or nil when all of it is.
    func unsavedProgress() -> (delta: ProgressDelta, bytes: Int, restarts: Int)? {
        guard !ended, let id = storage?.start.assistantMessageID else { return nil }
        let utf8 = answer.utf8
        guard utf8.count > savedBytes || replaceSaved else { return nil }
        let text = String(decoding: utf8.dropFirst(savedBytes), as: UTF8.self)
        return (ProgressDelta(id: id, text: text, replace: replaceSaved), utf8.count, restarts)
    }

    /// A progress write of `unsavedProgress()` was stored.
    func progressSaved(bytes: Int, restarts: Int) {
        guard restarts == self.restarts else { return }  // restarted since: the next write replaces
        savedBytes = bytes
        replaceSaved = false
    }

    private func finished() {
        if let id = storage?.start.assistantMessageID, service.liveAnswers[id] === self { service.liveAnswers[id] = nil }
        responder.onClientGone = nil
        responder.onWritabilityChanged = nil
        service.turnFinished(self)
        let o = observer
        observer = nil
        o?.runDidFinish(self, status: status, selected: selectedRun)
    }

    /// This run's answer id (its run id) and public model name, for a multi-model turn's events.
    var runID: String { storage?.start.assistantMessageID ?? "" }
    var modelName: String { route.name }
    var providerName: String { route.deployment.kind.rawValue }
    var deploymentID: String { route.deployment.id }
}
