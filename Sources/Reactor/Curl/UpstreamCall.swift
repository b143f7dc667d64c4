import CCurl

/// One upstream HTTP request as the provider layer describes it; `CurlTransfer` turns it into an
/// easy handle. Timeouts of 0 mean "none".
public struct UpstreamCall: Sendable {
    public enum Method: Sendable { case get, post }
    public enum HTTPVersion: Sendable {
        /// Strict end-to-end backpressure: TCP pushes back on the server while we are paused.
        case http1_1
        /// h2 over TLS (ALPN), HTTP/1.1 for plain http. Pausing one stream does not stall others,
        /// but curl keeps buffering a paused stream up to the h2 window (docs/reactor-notes.md C8).
        case http2
    }

    public var url: String
    public var method: Method
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var httpVersion: HTTPVersion
    /// TCP + TLS handshake budget, enforced by curl (CURLOPT_CONNECTTIMEOUT_MS).
    public var connectTimeoutMs: Int
    /// From start until the first body byte; a loop timer of ours.
    public var firstByteTimeoutMs: Int
    /// Longest silence between body chunks once the body started; a loop timer of ours,
    /// suspended while the consumer holds the transfer paused.
    public var idleTimeoutMs: Int
    /// Largest single delivery we accept to hold back when the consumer pauses; above it the
    /// transfer fails with `.bufferLimit` instead of letting curl's buffer grow.
    public var maxBufferedBytes: Int
    /// curl's receive buffer (CURLOPT_BUFFERSIZE), allocated per transfer: 16 KiB by default,
    /// most of a held stream's memory; token chunks are a few hundred bytes.
    public var receiveBufferBytes: Int = 2048
    /// curl's upload buffer (CURLOPT_UPLOAD_BUFFERSIZE): 64 KiB by default, allocated for a POST
    /// over TLS on HTTP/1.1 (curl copies the request there so OpenSSL can retry a write) and
    /// kept until the transfer ends, i.e. for the whole held stream. 16 KiB is curl's minimum;
    /// a larger request body is then sent in more writes.
    public var uploadBufferBytes: Int = 16 * 1024

    public init(url: String, method: Method = .post, headers: [(String, String)] = [], body: [UInt8] = [],
                httpVersion: HTTPVersion = .http2, connectTimeoutMs: Int = 10_000, firstByteTimeoutMs: Int = 60_000,
                idleTimeoutMs: Int = 60_000, maxBufferedBytes: Int = 1 << 20) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.httpVersion = httpVersion
        self.connectTimeoutMs = connectTimeoutMs
        self.firstByteTimeoutMs = firstByteTimeoutMs
        self.idleTimeoutMs = idleTimeoutMs
        self.maxBufferedBytes = maxBufferedBytes
    }
}

/// Why an upstream transfer did not complete, as a value with a human message.
public struct TransferError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum TimeoutKind: String, Sendable, Equatable {
        case connect, firstByte = "first byte", idle
    }

    public enum Kind: Sendable, Equatable {
        /// TCP connect refused or unreachable (CURLE_COULDNT_CONNECT).
        case connectFailed
        /// Name resolution failed (CURLE_COULDNT_RESOLVE_HOST/PROXY).
        case dnsFailed
        /// TLS handshake or certificate verification failed (CURLE_SSL_*, PEER_FAILED_VERIFICATION).
        case tlsFailed
        case timeout(TimeoutKind)
        /// `cancel()` was called.
        case cancelled
        /// The connection ended mid-response (PARTIAL_FILE, RECV_ERROR, GOT_NOTHING, HTTP2_STREAM).
        case partial
        /// One delivery was larger than `maxBufferedBytes` while the consumer could not take it.
        case bufferLimit
        /// Any other curl failure, or a set-up failure (code -1).
        case transport
    }

    public let kind: Kind
    /// The CURLcode, when curl reported the failure.
    public let curlCode: Int32?
    /// curl_easy_strerror plus the CURLOPT_ERRORBUFFER text, or our own explanation.
    public let detail: String

    public init(_ kind: Kind, curlCode: Int32? = nil, detail: String = "") {
        self.kind = kind
        self.curlCode = curlCode
        self.detail = detail
    }

    public var description: String {
        let what: String
        switch kind {
        case .connectFailed: what = "could not connect to upstream"
        case .dnsFailed: what = "could not resolve upstream host"
        case .tlsFailed: what = "TLS handshake with upstream failed"
        case .timeout(let k): what = "upstream \(k.rawValue) timeout"
        case .cancelled: what = "upstream request cancelled"
        case .partial: what = "upstream connection closed mid-response"
        case .bufferLimit: what = "upstream delivered more than the per-stream buffer limit while paused"
        case .transport: what = "upstream transport error"
        }
        var s = what
        if let c = curlCode { s += " (curl \(c))" }
        if !detail.isEmpty { s += ": \(detail)" }
        return s
    }

    /// Maps a finished transfer's CURLcode; `errorBuffer` is CURLOPT_ERRORBUFFER's text.
    static func from(_ code: CURLcode, errorBuffer: String) -> TransferError {
        let kind: Kind
        switch code {
        case CURLE_COULDNT_CONNECT: kind = .connectFailed
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: kind = .dnsFailed
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
             CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED,
             CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
             CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CLIENTCERT:
            kind = .tlsFailed
        // Only the connect phase has a curl-side timeout; first-byte and idle are our loop timers.
        case CURLE_OPERATION_TIMEDOUT: kind = .timeout(.connect)
        case CURLE_PARTIAL_FILE, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_HTTP2_STREAM: kind = .partial
        default: kind = .transport
        }
        var detail = String(cString: curl_easy_strerror(code))
        if !errorBuffer.isEmpty && errorBuffer != detail { detail += " — " + errorBuffer }
        return TransferError(kind, curlCode: Int32(bitPattern: code.rawValue), detail: detail)
    }
}
