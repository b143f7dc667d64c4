import HTTP

/// Whether one request may be answered from the cache (or join an identical answer in flight),
/// and whether its answer is kept, for how long. Off unless something turns it on: the request
/// (`"cache": {"ttl_s": N}` or `Cache-Control: max-age=N`), or the model's `cache_ttl_s` in the
/// catalog — which applies only to deterministic requests (temperature 0), since caching a
/// sampled answer would serve one sample for ever. `no-store` turns it off; `no-cache` skips the
/// lookup but keeps the fresh answer.
struct CachePolicy: Equatable {
    var lookup: Bool
    var ttlSeconds: Int

    static let maxTTLSeconds = 30 * 86_400

    /// The request's own word: `Cache-Control` and the native body's `cache.ttl_s`.
    struct Ask: Equatable {
        var ttlSeconds: Int?
        var noStore = false
        var noCache = false

        init(ttlSeconds: Int? = nil, noStore: Bool = false, noCache: Bool = false) {
            self.ttlSeconds = ttlSeconds
            self.noStore = noStore
            self.noCache = noCache
        }

        /// `no-store`, `no-cache`, `max-age=N` (N > 0 asks for caching with that lifetime; 0 is
        /// `no-cache`). Other directives are ignored, as HTTP caches ignore what they do not know.
        init(headers: HTTPHeaders) {
            for value in headers.values("Cache-Control") {
                for part in value.split(separator: ",") {
                    let d = part.trimmingSpaces.lowercased()
                    if d == "no-store" { noStore = true } else if d == "no-cache" { noCache = true } else if d.hasPrefix("max-age=") {
                        guard let n = Int(d.dropFirst(8)), n >= 0 else { continue }
                        if n == 0 { noCache = true } else { ttlSeconds = min(n, CachePolicy.maxTTLSeconds) }
                    }
                }
            }
        }
    }

    /// nil: not cacheable at all (no lookup, no join, nothing kept).
    static func decide(ask: Ask, modelTTL: Int?, temperature: Double?) -> CachePolicy? {
        if ask.noStore { return nil }
        let ttl: Int
        if let t = ask.ttlSeconds {
            ttl = t
        } else if let t = modelTTL, temperature == 0 {
            ttl = t
        } else {
            return nil
        }
        return CachePolicy(lookup: !ask.noCache, ttlSeconds: ttl)
    }
}
