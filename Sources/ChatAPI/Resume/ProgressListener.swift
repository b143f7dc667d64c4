import Reactor
import Storage

/// One worker's `LISTEN` on the progress channel: its own connection (not the pool's, which runs
/// statements), reconnected with backoff when it drops; each notification's answer ids go to
/// `onIDs`. Started when the worker first follows an answer generated elsewhere.
final class ProgressListener {
    private let loop: EventLoop
    private let configuration: PGConfiguration
    private var connection: PGConnection?
    private var reconnect: TimerID?
    private var backoffMillis: Int64 = 100
    private var closed = false
    var onIDs: (([Substring]) -> Void)?
    /// Told when a (re)connection is listening: notifications sent before then were missed.
    var onListening: (() -> Void)?

    init(loop: EventLoop, configuration: PGConfiguration) {
        self.loop = loop
        self.configuration = configuration
    }

    var isStarted: Bool { connection != nil || reconnect != nil }

    func start() {
        guard !isStarted, !closed else { return }
        connect()
    }

    private func connect() {
        reconnect = nil
        guard !closed else { return }
        let c = PGConnection(loop: loop, configuration: configuration)
        connection = c
        c.onNotification = { [weak self] channel, payload in
            guard channel == ProgressStore.channel else { return }
            self?.onIDs?(payload.split(separator: ","))
        }
        var listening = false
        c.onStateChange = { [weak self, unowned c] state in
            guard let self else { return }
            switch state {
            case .idle where !listening:
                listening = true
                c.execute(PGQuery("LISTEN \(ProgressStore.channel)")) { [weak self] r in
                    guard let self else { return }
                    if case .success = r {
                        self.backoffMillis = 100
                        self.onListening?()
                    }
                }
            case .failed:
                self.connection = nil
                let delay = self.backoffMillis
                self.backoffMillis = min(self.backoffMillis * 2, 5_000)
                self.reconnect = self.loop.schedule(afterMillis: delay) { [weak self] in self?.connect() }
            default:
                break
            }
        }
        c.connect()
    }

    func close() {
        closed = true
        if let t = reconnect { loop.cancel(t); reconnect = nil }
        connection?.onStateChange = nil
        connection?.onNotification = nil
        connection?.close()
        connection = nil
    }
}
