import HTTP
import JSONCore
import Providers
import Reactor
import Storage

/// One turn answered by several models at once on one SSE response (docs/API.md, "Several models
/// in one turn"). Each model is a `ChatTurn` of its own (a run: its own upstream, retries,
/// fallbacks, stored answer, usage and limits) writing tagged events through a `RunOutput`; this
/// object owns what they share: the response's head and `start`, the pings, the client's
/// backpressure and departure (passed to every run), the `fastest` race, and the closing `end`
/// once every run is over. A run's failure is its own `error` event; the others go on.
final class MultiModelTurn: RunObserver {
    private unowned let service: ChatService
    private let responder: HTTPResponder
    private let start: MultiTurnStart
    private let mode: RunMode
    private var runs: [(turn: ChatTurn, output: RunOutput, request: ChatRequest)] = []
    private var open = 0
    private var winner: ChatTurn?
    private var selectedRun: String?
    private var pingTimer: TimerID?
    private var ended = false

    init(service: ChatService, responder: HTTPResponder, start: MultiTurnStart, mode: RunMode) {
        self.service = service
        self.responder = responder
        self.start = start
        self.mode = mode
    }

    func add(route: RoutedModel, start runStart: TurnStart, request: ChatRequest, caller: Caller, admission: Admission,
             cancelOnDisconnect: Bool) {
        let output = RunOutput(shared: responder)
        let id = runStart.assistantMessageID
        let turn = ChatTurn(service: service, responder: output, wire: NativeWire(messageID: id, run: (id, route.name)),
                            route: route, storage: TurnStorage(store: service.store, owner: caller.owner, start: runStart, isRun: true),
                            caller: caller, admission: admission, cancelOnDisconnect: cancelOnDisconnect)
        turn.observer = self
        runs.append((turn, output, request))
    }

    /// Opens the response and starts every run. The runs hold this turn until the last one ends.
    func run() {
        open = runs.count
        (responder.context as? RequestContext)?.model = runs.map(\.turn.modelName).joined(separator: ",")
        responder.onWritabilityChanged = { [unowned self] writable in
            for r in runs { r.output.onWritabilityChanged?(writable) }
        }
        responder.onClientGone = { [unowned self] in
            cancelPing()
            for r in runs { r.output.onClientGone?() }
        }
        responder.beginStream(status: 200, headers: NativeWire.sseHeaders())
        responder.write(startFrame())
        schedulePing()
        let connected = responder.isClientConnected
        for r in runs {
            service.track(r.turn)
            r.turn.start(r.request)
            // A client gone before the answers began: its runs stop as it would have stopped them.
            if !connected { r.output.onClientGone?() }
        }
    }

    // MARK: RunObserver

    func runDidAnswer(_ run: ChatTurn) {
        guard mode == .fastest, winner == nil else { return }
        winner = run
        for r in runs where r.turn !== run { r.turn.cancelRun() }
    }

    func runDidFinish(_ run: ChatTurn, status: MessageStatus, selected: Bool) {
        if selected { selectedRun = run.runID }
        open -= 1
        guard open == 0, !ended else { return }
        ended = true
        cancelPing()
        responder.write(endFrame())
        responder.endStream()
        responder.onWritabilityChanged = nil
        responder.onClientGone = nil
        runs = []  // the runs held this turn; nothing holds them now
    }

    // MARK: Frames

    private func startFrame() -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.field("conversation_id", start.runs.first?.conversation.id)
        w.field("turn_id", start.turnID)
        w.field("mode", mode.rawValue)
        w.key("runs")
        w.beginArray()
        for r in runs {
            w.beginObject()
            w.field("run", r.turn.runID)
            w.field("model", r.turn.modelName)
            w.field("provider", r.turn.providerName)
            w.field("deployment", r.turn.deploymentID)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return Self.frame("start", w.bytes)
    }

    private func endFrame() -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.field("conversation_id", start.runs.first?.conversation.id)
        w.field("turn_id", start.turnID)
        w.field("selected_run", selectedRun)
        w.key("runs")
        w.beginArray()
        for r in runs {
            w.beginObject()
            w.field("run", r.turn.runID)
            w.field("model", r.turn.modelName)
            w.field("status", r.turn.status.rawValue)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return Self.frame("end", w.bytes)
    }

    /// The turn's own events carry no `id:`: a run's events do, and resume that run alone.
    private static func frame(_ event: String, _ data: [UInt8]) -> [UInt8] {
        var out = Array("event: \(event)\ndata: ".utf8)
        out.append(contentsOf: data)
        out.append(contentsOf: "\n\n".utf8)
        return out
    }

    private func schedulePing() {
        pingTimer = service.loop.schedule(afterSeconds: service.pingSeconds) { [weak self] in
            guard let self, !self.ended else { return }
            self.responder.write(Self.pingFrame)
            self.schedulePing()
        }
    }

    private func cancelPing() {
        if let t = pingTimer { service.loop.cancel(t); pingTimer = nil }
    }

    private static let pingFrame = Array(": ping\n\n".utf8)
}
