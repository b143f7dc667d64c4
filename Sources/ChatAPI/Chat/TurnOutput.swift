import HTTP

/// Where a turn's answer goes: the client's response itself, or one run's share of a multi-model
/// turn's response (`RunOutput`), which another object opened and will close.
protocol TurnOutput: AnyObject {
    var context: AnyObject? { get }
    var startedAt: UInt64 { get }
    var isWritable: Bool { get }
    var onClientGone: (() -> Void)? { get set }
    var onWritabilityChanged: ((Bool) -> Void)? { get set }
    /// True when the response head and opening event are already out: the turn streams at once,
    /// with no header hold and no pings of its own, and its errors travel as events.
    var isShared: Bool { get }
    func beginStream(status: Int, headers: HTTPHeaders)
    @discardableResult func write(_ bytes: [UInt8]) -> Bool
    /// A frame encoded in place, straight into the client connection's outbound buffer.
    @discardableResult func writeFrame(_ encode: (inout [UInt8]) -> Void) -> Bool
    func endStream()
    func respond(status: Int, headers: HTTPHeaders, body: [UInt8])
}

extension HTTPResponder: TurnOutput {
    var isShared: Bool { false }
}

/// One run's share of a multi-model response: frames go to the shared response; the response's
/// head, pings and end belong to the `MultiModelTurn`, which forwards the client's backpressure
/// and departure to every run.
final class RunOutput: TurnOutput {
    private let shared: HTTPResponder
    var onClientGone: (() -> Void)?
    var onWritabilityChanged: ((Bool) -> Void)?

    init(shared: HTTPResponder) {
        self.shared = shared
    }

    /// The run's log context is the request's: the access log shows the request once.
    var context: AnyObject? { nil }
    var startedAt: UInt64 { shared.startedAt }
    var isWritable: Bool { shared.isWritable }
    var isShared: Bool { true }
    func beginStream(status: Int, headers: HTTPHeaders) {}
    @discardableResult func write(_ bytes: [UInt8]) -> Bool { shared.write(bytes) }
    @discardableResult func writeFrame(_ encode: (inout [UInt8]) -> Void) -> Bool { shared.writeFrame(encode) }
    func endStream() {}
    func respond(status: Int, headers: HTTPHeaders, body: [UInt8]) {}
}
