import Providers
import Reactor

/// A provider stream over libcurl: the response head decides between streaming and an error
/// body, each body chunk goes through the provider's decoder straight to the delegate, and the
/// end of the transfer is checked for the provider's terminator.
final class CurlProviderStream: UpstreamStream, CurlTransferDelegate {
    private weak var delegate: UpstreamStreamDelegate?
    private let provider: ProviderKind
    /// The provider's URL; its host is worked out only for an error message, not per request.
    private let url: String
    private var decoder: any ProviderStreamDecoder
    private var transfer: CurlTransfer?
    private var status = 0
    private var headers: [(String, String)] = []
    /// Error bodies are small; cap what we keep of one so a hostile upstream cannot grow us.
    private var errorBody: [UInt8] = []
    private static let maxErrorBody = 64 * 1024
    private var ended = false

    init(multi: CurlMulti, request: UpstreamRequest, provider: ProviderKind, decoder: any ProviderStreamDecoder,
         timeouts: UpstreamTimeouts, delegate: UpstreamStreamDelegate) {
        self.delegate = delegate
        self.provider = provider
        self.decoder = decoder
        url = request.url
        var call = UpstreamCall(url: request.url, method: .post, headers: request.headers, body: request.body)
        call.connectTimeoutMs = timeouts.connectMs
        call.firstByteTimeoutMs = timeouts.firstTokenMs
        call.idleTimeoutMs = timeouts.idleMs
        // HTTP/2 over TLS multiplexes many streams on one connection (fewer fds per stream);
        // plain-http upstreams (local models, the mock) stay on HTTP/1.1.
        call.httpVersion = request.url.hasPrefix("https://") ? .http2 : .http1_1
        transfer = multi.start(call, delegate: self)
        transfer?.label = provider.rawValue
    }

    func pause() { transfer?.pause() }
    func resume() { transfer?.resume() }

    func cancel() {
        ended = true
        delegate = nil
        transfer?.cancel()
    }

    // MARK: CurlTransferDelegate

    func transferDidReceiveHead(_ t: CurlTransfer, status: Int, headers: [(String, String)]) {
        self.status = status
        // Only an error answer's headers are read (Retry-After and the like); a streamed answer
        // would hold its head for as long as the stream stays open.
        if status != 200 { self.headers = headers }
        if status == 200 { delegate?.upstreamDidStart() }
    }

    func transferDidReceiveBody(_ t: CurlTransfer, _ bytes: UnsafeRawBufferPointer) -> BodyDisposition {
        guard !ended else { return .accept }
        guard status == 200 else {
            let room = CurlProviderStream.maxErrorBody - errorBody.count
            if room > 0 { errorBody.append(contentsOf: bytes.prefix(room)) }
            return .accept
        }
        // Backpressure is applied with pause() between chunks, never by refusing this one: the
        // decoder has already consumed it, and curl would deliver the same bytes again.
        decoder.feed(bytes) { self.handle($0) }
        return .accept
    }

    func transferDidComplete(_ t: CurlTransfer, _ result: Result<Void, TransferError>) {
        transfer = nil
        guard !ended else { return }
        switch result {
        case .success:
            if status != 200 {
                end(UpstreamRequests.mapHTTPError(provider: provider, status: status, headers: headers, body: errorBody))
                return
            }
            decoder.finish { [unowned self] event in self.handle(event) }
            if !ended { end(ProviderError(.upstreamIncomplete, "\(provider.rawValue) stream ended without its terminator", upstreamStatus: 200)) }
        case .failure(let e):
            end(CurlProviderStream.map(e, provider: provider, host: CurlProviderStream.host(of: url), status: status))
        }
    }

    private func handle(_ event: StreamEvent) {
        guard !ended else { return }
        switch event {
        case .done:
            end(nil)
        case .error(let e):
            end(e)
            transfer?.cancel()
        default:
            delegate?.upstreamDidReceive(event)
        }
    }

    private func end(_ error: ProviderError?) {
        guard !ended else { return }
        ended = true
        let d = delegate
        delegate = nil
        d?.upstreamDidEnd(error)
    }

    /// Transport failures, each with its own clear message.
    static func map(_ e: TransferError, provider: ProviderKind, host: String, status: Int) -> ProviderError {
        let p = provider.rawValue
        switch e.kind {
        case .connectFailed: return ProviderError(.connectFailed, "could not connect to \(p) at \(host): \(e.detail)")
        case .dnsFailed: return ProviderError(.dnsFailed, "could not resolve \(p) host \(host): \(e.detail)")
        case .tlsFailed: return ProviderError(.tlsFailed, "TLS with \(p) at \(host) failed: \(e.detail)")
        case .timeout(let k):
            let what: String
            switch k {
            case .connect: what = "connecting"
            case .firstByte: what = "waiting for the first token"
            case .idle: what = "waiting for the next token"
            }
            return ProviderError(.upstreamTimeout, "\(p) timed out \(what)", upstreamStatus: status == 0 ? nil : status)
        case .partial: return ProviderError(.upstreamIncomplete, "\(p) closed the connection mid-stream", upstreamStatus: status == 0 ? nil : status)
        case .cancelled: return ProviderError(.upstreamError, "\(p) request cancelled")
        case .bufferLimit, .transport: return ProviderError(.upstreamError, "\(p) transport error: \(e.description)")
        }
    }

    static func host(of url: String) -> String {
        var s = Substring(url)
        if let r = s.firstRange(of: "://") { s = s[r.upperBound...] }
        return String(s.prefix { $0 != "/" && $0 != "?" })
    }
}

/// Upstream time limits from configuration.
struct UpstreamTimeouts {
    var connectMs: Int
    var firstTokenMs: Int
    var idleMs: Int
}
