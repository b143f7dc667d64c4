import CCurl

/// Process-wide libcurl set-up.
public enum CurlGlobal {
    /// `curl_global_init` runs exactly once (a `static let` is initialised under swift_once), so
    /// calling `initialize()` again is free. Call it from main before any thread exists: it is not
    /// thread-safe in curl itself (docs/reactor-notes.md C10), and the threaded resolver starts threads.
    private static let initResult: Int32 = Int32(bitPattern: curl_global_init(Int(CURL_GLOBAL_DEFAULT)).rawValue)

    /// Initialises libcurl once; returns false if curl could not be initialised.
    @discardableResult
    public static func initialize() -> Bool { initResult == 0 }

    /// "libcurl/7.88.1 OpenSSL/3.0 ... nghttp2/1.52.0".
    public static var version: String { String(cString: curl_version()) }

    /// Whether DNS runs off the loop thread (threaded resolver); without it a lookup would block the loop.
    public static var hasAsyncDNS: Bool {
        guard let info = ccurl_version_info_now() else { return false }
        return info.pointee.features & CURL_VERSION_ASYNCHDNS != 0
    }

    /// Whether this libcurl can speak HTTP/2 (nghttp2).
    public static var hasHTTP2: Bool {
        guard let info = ccurl_version_info_now() else { return false }
        return info.pointee.features & CURL_VERSION_HTTP2 != 0
    }
}

/// A `CURL *`. In C both `CURL` and `CURLM` are `typedef void`, so both import as raw pointers and
/// nothing stops one being passed as the other (docs/reactor-notes.md A6): distinct wrapper types do.
struct CurlEasyHandle: Hashable {
    let raw: UnsafeMutableRawPointer

    static func make() -> CurlEasyHandle? { curl_easy_init().map(CurlEasyHandle.init(raw:)) }

    @discardableResult
    func set(_ option: CURLoption, _ value: Int) -> CURLcode { ccurl_easy_setopt_long(raw, option, value) }
    @discardableResult
    func set(_ option: CURLoption, string: String) -> CURLcode {
        // String options are copied by curl (>= 7.17); only POSTFIELDS is not (docs/reactor-notes.md C10).
        string.withCString { ccurl_easy_setopt_string(raw, option, $0) }
    }
    @discardableResult
    func set(_ option: CURLoption, pointer: UnsafeMutableRawPointer?) -> CURLcode { ccurl_easy_setopt_ptr(raw, option, pointer) }
    @discardableResult
    func set(_ option: CURLoption, list: UnsafeMutablePointer<curl_slist>?) -> CURLcode { ccurl_easy_setopt_slist(raw, option, list) }
    @discardableResult
    func set(_ option: CURLoption, offset: Int64) -> CURLcode { ccurl_easy_setopt_off(raw, option, curl_off_t(offset)) }

    func info(_ i: CURLINFO) -> Int {
        var v = 0
        _ = ccurl_easy_getinfo_long(raw, i, &v)
        return v
    }

    func pause(_ bitmask: Int32) -> CURLcode { curl_easy_pause(raw, bitmask) }
    func cleanup() { curl_easy_cleanup(raw) }
}

/// A `CURLM *`; see `CurlEasyHandle` for why it is its own type.
struct CurlMultiHandle {
    let raw: UnsafeMutableRawPointer

    static func make() -> CurlMultiHandle? { curl_multi_init().map(CurlMultiHandle.init(raw:)) }

    @discardableResult
    func set(_ option: CURLMoption, _ value: Int) -> CURLMcode { ccurl_multi_setopt_long(raw, option, value) }
    @discardableResult
    func set(_ option: CURLMoption, pointer: UnsafeMutableRawPointer?) -> CURLMcode { ccurl_multi_setopt_ptr(raw, option, pointer) }

    func add(_ easy: CurlEasyHandle) -> CURLMcode { curl_multi_add_handle(raw, easy.raw) }
    @discardableResult
    func remove(_ easy: CurlEasyHandle) -> CURLMcode { curl_multi_remove_handle(raw, easy.raw) }

    func socketAction(_ fd: Int32, _ mask: Int32) -> CURLMcode {
        var running: Int32 = 0
        return curl_multi_socket_action(raw, fd, mask, &running)
    }

    /// Next finished transfer, with the easy handle and result copied out: `CURLMsg` is invalid
    /// after `curl_multi_remove_handle` (docs/reactor-notes.md C7).
    func nextDone() -> (easy: CurlEasyHandle, result: CURLcode)? {
        var left: Int32 = 0
        while let msg = curl_multi_info_read(raw, &left) {
            guard msg.pointee.msg == CURLMSG_DONE, let e = msg.pointee.easy_handle else { continue }
            return (CurlEasyHandle(raw: e), ccurl_msg_result(msg))
        }
        return nil
    }

    func cleanup() { _ = curl_multi_cleanup(raw) }
}
