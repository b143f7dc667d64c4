import Providers
import Reactor

/// The built-in mock models (`mock-echo`, `mock-tokens-N`) streamed from the loop with no network,
/// so a server with no provider key still answers. Tokens go out in small batches per tick and
/// stop while the client is slow, like a real upstream under backpressure.
final class MockProviderStream: UpstreamStream {
    private weak var delegate: UpstreamStreamDelegate?
    private let loop: EventLoop
    private let plan: MockPlan
    private var next = 0
    private var paused = false
    private var ended = false
    private var scheduled = false

    init(loop: EventLoop, plan: MockPlan, delegate: UpstreamStreamDelegate) {
        self.loop = loop
        self.plan = plan
        self.delegate = delegate
        loop.nextTick { [weak self] in
            guard let self, !self.ended else { return }
            self.delegate?.upstreamDidStart()
            self.pump()
        }
    }

    private func pump() {
        scheduled = false
        var batch = 64
        while !ended && !paused && next < plan.tokens.count && batch > 0 {
            delegate?.upstreamDidReceive(.text(plan.tokens[next]))
            next += 1
            batch -= 1
        }
        guard !ended && !paused else { return }
        if next < plan.tokens.count {
            schedulePump()
            return
        }
        ended = true
        let d = delegate
        delegate = nil
        d?.upstreamDidReceive(.finish(plan.finish))
        d?.upstreamDidReceive(.usage(plan.usage))
        d?.upstreamDidEnd(nil)
    }

    private func schedulePump() {
        guard !scheduled else { return }
        scheduled = true
        loop.nextTick { [weak self] in self?.pump() }
    }

    func pause() { paused = true }

    func resume() {
        guard paused else { return }
        paused = false
        if !ended { schedulePump() }
    }

    func cancel() {
        ended = true
        delegate = nil
    }
}
