#if canImport(Glibc)
import Glibc
#endif
import JSONCore

/// Pieces shared by the three providers' error mappers.
enum ErrorMapping {
    /// The classification when a body says nothing more useful than its status.
    static func kind(forStatus status: Int) -> ProviderError.Kind {
        switch status {
        case 401, 403: return .unauthorized
        case 402: return .quotaExceeded
        case 408, 504: return .upstreamTimeout
        case 429: return .rateLimited
        case 503, 529: return .overloaded
        case 400, 404, 413, 422: return .invalidRequest
        default: return .upstreamError
        }
    }

    /// `retry-after-ms` (milliseconds) wins over `retry-after` (seconds, or an HTTP date).
    static func retryAfter(headers: [(String, String)], nowSeconds: Int = Int(time(nil))) -> Double? {
        if let ms = Headers.value("retry-after-ms", in: headers).flatMap({ Double(trimmed($0)) }), ms >= 0, ms.isFinite {
            return ms / 1000
        }
        guard let raw = Headers.value("retry-after", in: headers) else { return nil }
        if let s = Double(trimmed(raw)), s >= 0, s.isFinite { return s }
        return RetryAfterDate.secondsUntil(trimmed(raw), nowSeconds: nowSeconds)
    }

    /// Parses a body leniently: an unreadable body is not an error in itself, the status still is.
    static func parse(_ body: [UInt8]) -> JSONValue? {
        guard !body.isEmpty else { return nil }
        return try? JSONParser.parse(body)
    }

    static func trimmed(_ s: String) -> Substring {
        var sub = Substring(s)
        while sub.first == " " || sub.first == "\t" { sub = sub.dropFirst() }
        while sub.last == " " || sub.last == "\t" { sub = sub.dropLast() }
        return sub
    }

    static func fallbackMessage(_ provider: ProviderKind, status: Int, body: [UInt8]) -> String {
        // Plain-text error pages (proxies, load balancers) are still worth a glimpse.
        let snippet = String(decoding: body.prefix(200), as: UTF8.self)
        let trimmedSnippet = trimmed(snippet)
        return trimmedSnippet.isEmpty
            ? "\(provider.rawValue) returned HTTP \(status)"
            : "\(provider.rawValue) returned HTTP \(status): \(trimmedSnippet)"
    }
}
