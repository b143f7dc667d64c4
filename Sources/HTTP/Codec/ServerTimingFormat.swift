/// Durations as the Server-Timing header writes them: milliseconds with three decimals, appended
/// as digits to a response head under construction (no string per response).
public enum ServerTimingFormat {
    /// Nanoseconds as milliseconds with three decimals ("12.345").
    public static func appendMillis(_ nanos: UInt64, to out: inout [UInt8]) {
        let micros = (nanos + 500) / 1000
        appendDecimal(micros / 1000, to: &out)
        out.append(UInt8(ascii: "."))
        let frac = micros % 1000
        out.append(UInt8(ascii: "0") + UInt8(frac / 100))
        out.append(UInt8(ascii: "0") + UInt8(frac / 10 % 10))
        out.append(UInt8(ascii: "0") + UInt8(frac % 10))
    }

    /// `gw;dur=…` alone, for responses the server writes without a responder (parse failures, refusals).
    public static func gatewayOnly(_ nanos: UInt64) -> String {
        var out = Array("gw;dur=".utf8)
        appendMillis(nanos, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        if value >= 10 { appendDecimal(value / 10, to: &out) }
        out.append(UInt8(ascii: "0") + UInt8(value % 10))
    }
}
