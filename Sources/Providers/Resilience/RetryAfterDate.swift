#if canImport(Glibc)
import Glibc
#endif

/// `Retry-After` as an HTTP date (RFC 9110 IMF-fixdate, `Wed, 21 Oct 2026 07:28:00 GMT`): the
/// seconds from `nowSeconds` until then (0 when already past), or nil when it is not such a date.
enum RetryAfterDate {
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func secondsUntil(_ value: Substring, nowSeconds: Int) -> Double? {
        // "Wed," "21" "Oct" "2026" "07:28:00" "GMT"
        let parts = value.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let year = Int(parts[3]),
              let month = months.firstIndex(of: String(parts[2])) else { return nil }
        let hms = parts[4].split(separator: ":").compactMap { Int($0) }
        guard hms.count == 3, (1...31).contains(day), (0...23).contains(hms[0]), (0...59).contains(hms[1]), (0...60).contains(hms[2]) else {
            return nil
        }
        var t = tm()
        t.tm_year = Int32(year - 1900)
        t.tm_mon = Int32(month)
        t.tm_mday = Int32(day)
        t.tm_hour = Int32(hms[0])
        t.tm_min = Int32(hms[1])
        t.tm_sec = Int32(hms[2])
        let when = Int(timegm(&t))
        return Double(max(0, when - nowSeconds))
    }
}
