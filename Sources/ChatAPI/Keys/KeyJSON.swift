import JSONCore
import Storage

/// A key as the admin API and `chatrelay keys list --json` show it: everything but the hash.
enum KeyJSON {
    static func write(_ k: KeyRecord, to w: inout JSONWriter) {
        w.beginObject()
        w.field("id", k.id)
        w.field("name", k.name)
        w.field("prefix", k.prefix)
        w.field("rpm", k.limits.rpm)
        w.field("tpm", k.limits.tpm)
        w.field("max_streams", k.limits.maxStreams)
        // A string: the exact decimal, which a JSON number read as a double would not keep.
        w.field("budget_usd", k.limits.budgetUSD)
        w.field("budget_period", k.limits.budgetPeriod?.rawValue)
        w.key("models")
        if let models = k.limits.models {
            w.beginArray()
            for m in models { w.string(m) }
            w.endArray()
        } else {
            w.null()
        }
        w.field("cache_ttl_s", k.limits.cacheTTLSeconds)
        w.field("created_at", k.createdAt)
        w.field("rotated_at", k.rotatedAt)
        w.field("revoked_at", k.revokedAt)
        w.endObject()
    }

    static func list(_ keys: [KeyRecord]) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.key("data")
        w.beginArray()
        for k in keys { write(k, to: &w) }
        w.endArray()
        w.endObject()
        return w.bytes
    }

    static func one(_ k: KeyRecord) -> [UInt8] {
        var w = JSONWriter()
        write(k, to: &w)
        return w.bytes
    }

    /// `{"key": {...}, "secret": "cr_..."}`: a new or rotated key with its secret, shown this once.
    static func withSecret(_ k: KeyRecord, secret: String) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.key("key")
        write(k, to: &w)
        w.field("secret", secret)
        w.endObject()
        return w.bytes
    }
}
