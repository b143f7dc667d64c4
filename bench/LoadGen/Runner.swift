#if canImport(Glibc)
import Glibc
#endif
import JSONCore
import Reactor

/// A sample of the servers (and the harness) at one moment of a hold or vanish run.
struct Snapshot {
    var label: String
    var atSeconds: Double
    var openStreams: Int
    var servers: [ProcSample]
    var harness: ProcSample
    var mockActive: Int?
}

/// Drives one run on one loop: closed loop, open loop, hold or vanish.
final class Runner: ClientOwner {
    let o: Options
    let loop: EventLoop
    let stats = RunStats()
    private let requestBytes: [UInt8]
    private let healthBytes: [UInt8]

    private var clients: [Int: Client] = [:]
    private var idle: [Client] = []
    private var connectQueue: [Client] = []
    private var connectHead = 0
    private var pending: Set<Int> = []
    private var nextID = 0
    private(set) var inFlight = 0
    private var attempts = 0
    private var issuing = true
    private var done = false

    private(set) var startedAt: UInt64 = 0
    private(set) var endedAt: UInt64 = 0
    private var nextArrival: UInt64 = 0
    private var interval: UInt64 = 0
    private var refillScheduled = false
    /// Closed-loop slots open so far (`--ramp`); all of them without a ramp.
    private var openSlots = 0
    private var rampTimer: TimerID?
    /// Run-long timers (duration, grace, hard bound); cancelled at the end.
    private var timers: [TimerID] = []
    private var sweepTimer: TimerID?
    private var arrivalTimer: TimerID?

    // Samples.
    private(set) var serverBefore: [ProcSample] = []
    private(set) var serverAfter: [ProcSample] = []
    private(set) var harnessCPUBefore: UInt64 = 0
    private(set) var harnessCPUAfter: UInt64 = 0
    private(set) var snapshots: [Snapshot] = []
    private(set) var loadBefore = 0.0
    private(set) var loadAfter = 0.0

    // Hold / vanish.
    private var openStreams = 0
    private var failedStreams = 0
    private var stepIndex = 0
    private var waitingForStep = false
    private var stepDeadline: TimerID?
    private(set) var vanishFacts: [String: Double] = [:]
    private var mockBaseline: Int?
    private var mockActive: Int?
    private var healthClient: Client?
    private var healthWaiter: ((Int?) -> Void)?
    private var baselineFDs = 0
    private var vanishAt: UInt64 = 0
    private var activeBackAt: UInt64 = 0
    private var fdsBackAt: UInt64 = 0
    private var peakFDsAfterClose = 0
    private(set) var notes: [String] = []

    init(options: Options, loop: EventLoop) {
        o = options
        self.loop = loop
        requestBytes = Runner.buildRequest(options)
        healthBytes = Array("GET /health HTTP/1.1\r\nHost: \(options.mockHost ?? "127.0.0.1"):\(options.mockPort)\r\nConnection: keep-alive\r\n\r\n".utf8)
    }

    static func buildRequest(_ o: Options) -> [UInt8] {
        let message = o.prompt + " " + o.directives
        var w = JSONWriter()
        let path: String
        w.beginObject()
        switch o.target {
        case .chat:
            path = o.pathPrefix + "/api/v1/chat"
            w.field("message", message)
            if o.models.isEmpty {
                w.field("model", o.model)
            } else {
                w.key("models")
                w.beginArray()
                for m in o.models { w.string(m) }
                w.endArray()
            }
            if let ttl = o.cacheTTL {
                w.key("cache")
                w.beginObject()
                w.field("ttl_s", ttl)
                w.endObject()
            }
        case .openai:
            path = o.pathPrefix + "/v1/chat/completions"
            w.field("model", o.model)
            w.field("stream", true)
            w.key("messages")
            w.beginArray()
            w.beginObject()
            w.field("role", "user")
            w.field("content", message)
            w.endObject()
            w.endArray()
        case .anthropic:
            path = o.pathPrefix + "/v1/messages"
            w.field("model", o.model)
            // Required by Anthropic's API. Never below the 1024 the other targets get by default,
            // and never short of the answer asked of the mock, so it truncates nothing.
            w.field("max_tokens", min(max(o.tokens, 1024), 1_000_000))
            w.field("stream", true)
            w.key("messages")
            w.beginArray()
            w.beginObject()
            w.field("role", "user")
            w.field("content", message)
            w.endObject()
            w.endArray()
        }
        w.endObject()
        let body = w.bytes
        var head = "POST \(path) HTTP/1.1\r\nHost: \(o.host):\(o.port)\r\n"
        // The headers an Anthropic SDK sends; the others authenticate as OpenAI's SDKs do.
        head += o.target == .anthropic ? "x-api-key: \(o.apiKey)\r\nanthropic-version: 2023-06-01\r\n" : "Authorization: Bearer \(o.apiKey)\r\n"
        // The other surfaces ask for the response cache the HTTP way.
        if let ttl = o.cacheTTL, o.target != .chat { head += "Cache-Control: max-age=\(ttl)\r\n" }
        head += "Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: \(body.count)\r\n\r\n"
        return Array(head.utf8) + body
    }

    private var kind: Client.Kind {
        switch o.target {
        case .chat: return .chat
        case .openai: return .openai
        case .anthropic: return .anthropic
        }
    }

    // MARK: Start

    func start() {
        serverBefore = o.serverPIDs.map(ProcSample.take)
        harnessCPUBefore = ProcessStats.cpuNanos
        loadBefore = ProcSample.loadAverage()
        startedAt = monotonicNanos()
        switch o.mode {
        case .closed, .open:
            let durationNs = UInt64(o.durationSeconds * 1e9)
            timers.append(loop.schedule(afterNanos: durationNs) { [weak self] in self?.endIssuing() })
            sweepTimer = loop.schedule(afterMillis: 250) { [weak self] in self?.sweep() }
            if o.requests == 0 { endIssuing(); return }
            if o.mode == .closed {
                openSlots = o.rampSeconds > 0 ? 0 : o.concurrency
                rampSlots()
            } else {
                interval = max(1, UInt64(1e9 / o.rate))
                nextArrival = startedAt
                arrivals()
            }
        case .hold, .vanish:
            // Hard bound for the whole scenario.
            let bound = o.openTimeoutSeconds * Double(o.steps.count) + o.holdSeconds + o.settleTimeoutSeconds + 30
            timers.append(loop.schedule(afterSeconds: bound) { [weak self] in
                self?.notes.append("hard stop after \(Int(bound)) s")
                self?.hardStop()
            })
            pollHealth { [weak self] active in
                guard let self else { return }
                self.mockBaseline = active
                self.snapshot("baseline")
                self.baselineFDs = self.snapshots.last!.servers.reduce(0) { $0 + $1.fds }
                self.nextStep()
            }
        }
    }

    // MARK: Closed / open loop

    private func canIssue() -> Bool {
        guard issuing else { return false }
        if attempts >= o.requests { endIssuing(); return false }
        return true
    }

    /// Opens the slots due by now on the ramp, then again every millisecond until all are open.
    private func rampSlots() {
        rampTimer = nil
        if openSlots < o.concurrency {
            let elapsed = Double(monotonicNanos() - startedAt) / 1e9
            openSlots = min(o.concurrency, max(openSlots, Int(Double(o.concurrency) * elapsed / o.rampSeconds) + 1))
        }
        refill()
        if openSlots < o.concurrency && issuing {
            rampTimer = loop.schedule(afterMillis: 1) { [weak self] in self?.rampSlots() }
        }
    }

    private func refill() {
        while inFlight < openSlots && canIssue() {
            startRequest(at: monotonicNanos())
        }
        checkDone()
    }

    private func arrivals() {
        let now = monotonicNanos()
        var budget = 10_000
        while nextArrival <= now && budget > 0 && canIssue() {
            budget -= 1
            if inFlight >= o.maxStreams {
                attempts += 1
                stats.error("dropped")
            } else {
                startRequest(at: nextArrival)
            }
            nextArrival &+= interval
        }
        guard issuing else { checkDone(); return }
        let wait = nextArrival > now ? nextArrival - now : 0
        arrivalTimer = loop.schedule(afterNanos: wait) { [weak self] in self?.arrivals() }
    }

    private func startRequest(at s: UInt64) {
        attempts += 1
        inFlight += 1
        stats.started += 1
        while let c = idle.popLast() {
            if c.phase == .idle {
                c.send(requestBytes, start: s)
                return
            }
        }
        let c = newClient(kind)
        c.send(requestBytes, start: s)
        queueConnect(c)
    }

    private func newClient(_ k: Client.Kind) -> Client {
        nextID += 1
        let c = Client(id: nextID, kind: k, owner: self)
        clients[c.id] = c
        return c
    }

    private func queueConnect(_ c: Client) {
        connectQueue.append(c)
        pumpConnects()
    }

    private func pumpConnects() {
        while pending.count < o.maxPendingConnects && connectHead < connectQueue.count {
            let c = connectQueue[connectHead]
            connectHead += 1
            if let err = c.connect(host: o.host, port: o.port) {
                if notes.count < 8 { notes.append("connect: \(err)") }
                stats.error("connect")
                clients[c.id] = nil
                inFlight -= 1
                // Retry later rather than spin (e.g. EMFILE, EADDRNOTAVAIL).
                scheduleRefill()
                continue
            }
            pending.insert(c.id)
        }
        if connectHead > 1024 && connectHead * 2 > connectQueue.count {
            connectQueue.removeFirst(connectHead)
            connectHead = 0
        }
    }

    private func scheduleRefill() {
        guard !refillScheduled, o.mode == .closed else { return }
        refillScheduled = true
        loop.schedule(afterMillis: 10) { [weak self] in
            self?.refillScheduled = false
            self?.refill()
        }
    }

    private func endIssuing() {
        guard issuing else { return }
        issuing = false
        if o.mode == .closed || o.mode == .open {
            timers.append(loop.schedule(afterSeconds: o.graceSeconds) { [weak self] in
                guard let self, !self.done else { return }
                self.notes.append("hard stop: \(self.inFlight) requests still in flight after the grace period")
                self.hardStop()
            })
        }
        checkDone()
    }

    private func checkDone() {
        if !issuing && inFlight == 0 && (o.mode == .closed || o.mode == .open) { finish() }
    }

    private func sweep() {
        guard !done else { return }
        let now = monotonicNanos()
        let limit = UInt64(o.requestTimeoutSeconds * 1e9)
        for c in Array(clients.values) where (c.phase == .busy || c.phase == .connecting) && now &- c.start > limit && c.start != 0 {
            c.abortKind = "timeout"
            c.close()
        }
        sweepTimer = loop.schedule(afterMillis: 250) { [weak self] in self?.sweep() }
    }

    /// SIGINT/SIGTERM: stop now, report what was measured.
    func interrupt() {
        notes.append("interrupted by a signal")
        hardStop()
    }

    /// Closes every busy client, counting them as `aborted`, and ends the run.
    private func hardStop() {
        for c in Array(clients.values) where c.phase == .busy || c.phase == .connecting {
            c.abortKind = "aborted"
            c.close()
        }
        finish()
    }

    private func finish() {
        guard !done else { return }
        done = true
        endedAt = monotonicNanos()
        harnessCPUAfter = ProcessStats.cpuNanos
        serverAfter = o.serverPIDs.map(ProcSample.take)
        loadAfter = ProcSample.loadAverage()
        for t in timers { loop.cancel(t) }
        if let t = sweepTimer { loop.cancel(t) }
        if let t = arrivalTimer { loop.cancel(t) }
        if let t = rampTimer { loop.cancel(t) }
        if let t = stepDeadline { loop.cancel(t) }
        for c in Array(clients.values) where c.abortKind == nil { c.abortKind = "__finish"; c.close() }
        healthClient?.close()
        loop.stop()
    }

    // MARK: ClientOwner

    func clientConnected(_ c: Client) {
        if pending.remove(c.id) != nil { pumpConnects() }
    }

    func clientGone(_ c: Client) {
        clients[c.id] = nil
        if pending.remove(c.id) != nil { pumpConnects() }
        if c === healthClient { healthClient = nil }
    }

    func clientFirstToken(_ c: Client) {
        guard o.mode == .hold || o.mode == .vanish else { return }
        openStreams += 1
        checkStep()
    }

    func clientFinished(_ c: Client, _ outcome: Outcome, reusable: Bool) {
        if c === healthClient {
            if !reusable { healthClient = nil }
            let w = healthWaiter
            healthWaiter = nil
            w?(nil)
            return
        }
        inFlight -= 1
        switch outcome {
        case .ok:
            stats.completed += 1
        case .failed(let kind):
            switch kind {
            case "__connect": break  // counted when the connect failed
            case "__closed": if let k = c.abortKind, !k.hasPrefix("__") { stats.error(k) }
            default: stats.error(kind)
            }
        }
        let wasOpen = c.hasFirstToken
        if reusable { idle.append(c) } else { clients[c.id] = nil }
        switch o.mode {
        case .closed:
            refill()
        case .open:
            checkDone()
        case .hold, .vanish:
            // A stream that ended by itself (error or a finite answer) while it should stay open.
            if !done && c.abortKind == nil {
                failedStreams += 1
                if wasOpen { openStreams -= 1 }
                checkStep()
            }
        }
    }

    func plainResponse(_ c: Client, status: Int, body: [UInt8]) {
        var active: Int?
        if status == 200, let v = try? JSONParser.parse(body), let a = v["active_streams"]?.int { active = Int(a) }
        let w = healthWaiter
        healthWaiter = nil
        w?(active)
    }

    // MARK: Hold and vanish

    private func pollHealth(_ then: @escaping (Int?) -> Void) {
        guard let host = o.mockHost else { then(nil); return }
        healthWaiter = { [weak self] v in
            self?.mockActive = v
            then(v)
        }
        if let h = healthClient, h.phase == .idle {
            h.send(healthBytes, start: monotonicNanos())
            return
        }
        let h = newClient(.plain)
        healthClient = h
        h.send(healthBytes, start: monotonicNanos())
        if let err = h.connect(host: host, port: o.mockPort) {
            clients[h.id] = nil
            healthClient = nil
            notes.append("health: \(err)")
            let w = healthWaiter
            healthWaiter = nil
            w?(nil)
        }
    }

    private func snapshot(_ label: String) {
        var h = ProcSample.selfSample()
        h.fds = ProcessStats.openFileCount
        snapshots.append(Snapshot(label: label, atSeconds: Double(monotonicNanos() &- startedAt) / 1e9, openStreams: openStreams,
                                  servers: o.serverPIDs.map(ProcSample.take), harness: h, mockActive: mockActive))
    }

    private func nextStep() {
        guard !done else { return }
        guard stepIndex < o.steps.count else { allOpen(); return }
        let target = o.steps[stepIndex]
        waitingForStep = true
        stepDeadline = loop.schedule(afterSeconds: o.openTimeoutSeconds) { [weak self] in
            guard let self, self.waitingForStep else { return }
            self.stepDeadline = nil
            self.notes.append("step \(target): only \(self.openStreams) streams open after \(Int(self.o.openTimeoutSeconds)) s")
            self.stepReached()
        }
        while stats.started < target { startRequest(at: monotonicNanos()) }
        checkStep()
    }

    private func checkStep() {
        guard waitingForStep, stepIndex < o.steps.count else { return }
        if openStreams + failedStreams >= o.steps[stepIndex] { stepReached() }
    }

    private func stepReached() {
        waitingForStep = false
        if let t = stepDeadline { loop.cancel(t); stepDeadline = nil }
        let label = "open_\(o.steps[stepIndex])"
        stepIndex += 1
        // Let the server settle a moment (one token interval) before sampling.
        loop.schedule(afterMillis: 200) { [weak self] in
            guard let self, !self.done else { return }
            self.pollHealth { [weak self] _ in
                guard let self else { return }
                self.snapshot(label)
                self.nextStep()
            }
        }
    }

    private func allOpen() {
        if o.mode == .hold {
            loop.schedule(afterSeconds: o.holdSeconds) { [weak self] in
                guard let self, !self.done else { return }
                self.pollHealth { [weak self] _ in
                    guard let self else { return }
                    self.snapshot("held")
                    self.closeAllStreams(reset: false)
                    self.loop.schedule(afterMillis: 1000) { [weak self] in
                        self?.pollHealth { [weak self] _ in
                            self?.snapshot("closed_1s")
                            self?.finish()
                        }
                    }
                }
            }
        } else {
            closeAllStreams(reset: o.vanishReset)
            vanishAt = monotonicNanos()
            settlePoll()
        }
    }

    private func closeAllStreams(reset: Bool) {
        for c in Array(clients.values) where c !== healthClient {
            c.abortKind = "__closed_on_purpose"
            c.close(reset: reset)
        }
    }

    private func settlePoll() {
        guard !done else { return }
        let now = monotonicNanos()
        let servers = o.serverPIDs.map(ProcSample.take)
        let fds = servers.reduce(0) { $0 + $1.fds }
        peakFDsAfterClose = max(peakFDsAfterClose, fds)
        if fdsBackAt == 0 && fds <= baselineFDs + o.fdSlack { fdsBackAt = now }
        pollHealth { [weak self] active in
            guard let self, !self.done else { return }
            let t = monotonicNanos()
            if self.activeBackAt == 0, let a = active, a <= (self.mockBaseline ?? 0) { self.activeBackAt = t }
            let activeOK = self.o.mockHost == nil || self.activeBackAt != 0
            let fdsOK = self.o.serverPIDs.isEmpty || self.fdsBackAt != 0
            let timedOut = Double(t &- self.vanishAt) / 1e9 > self.o.settleTimeoutSeconds
            if (activeOK && fdsOK) || timedOut {
                if timedOut { self.notes.append("settle timeout: not back to baseline after \(Int(self.o.settleTimeoutSeconds)) s") }
                if self.activeBackAt != 0 { self.vanishFacts["active_streams_settle_ms"] = Double(self.activeBackAt &- self.vanishAt) / 1e6 }
                if self.fdsBackAt != 0 { self.vanishFacts["fds_settle_ms"] = Double(self.fdsBackAt &- self.vanishAt) / 1e6 }
                self.vanishFacts["baseline_fds"] = Double(self.baselineFDs)
                self.vanishFacts["peak_fds_after_close"] = Double(self.peakFDsAfterClose)
                if let b = self.mockBaseline { self.vanishFacts["baseline_mock_active"] = Double(b) }
                // RSS a moment later (allocators return memory lazily).
                self.snapshot("settled")
                self.loop.schedule(afterMillis: 1000) { [weak self] in
                    self?.snapshot("settled_1s")
                    self?.finish()
                }
                return
            }
            self.loop.schedule(afterMillis: 20) { [weak self] in self?.settlePoll() }
        }
    }
}
