import Providers

/// Receives one provider stream's normalized events, on the loop.
protocol UpstreamStreamDelegate: AnyObject {
    /// The provider accepted the request (HTTP 200): a response to the client may begin.
    func upstreamDidStart()
    /// Text, usage or finish reason, in arrival order.
    func upstreamDidReceive(_ event: StreamEvent)
    /// The stream is over: nil when it ended with the provider's terminator, else why it failed.
    /// Called exactly once, and never after `cancel()`.
    func upstreamDidEnd(_ error: ProviderError?)
}

/// One answer being streamed from a provider (through libcurl) or from the built-in mock.
protocol UpstreamStream: AnyObject {
    /// Stop delivering until `resume()` (the client is slow).
    func pause()
    func resume()
    /// Stop at once and free everything; no callback follows.
    func cancel()
}
