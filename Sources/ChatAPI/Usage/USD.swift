import Providers

/// Money as whole picodollars (1e-12 USD): sums of many small costs stay exact, and a price with
/// up to six decimals per million tokens is a whole number of picodollars per token.
enum USD {
    /// Picodollars per token at `perMTok` USD per million tokens.
    static func picoPerToken(_ perMTok: Double) -> Int64 { Int64((perMTok * 1_000_000).rounded()) }

    /// The cost of a turn at `price` (nil: free, as for a model with no price in the catalog).
    static func costPico(prompt: Int64, completion: Int64, price: Price?) -> Int64 {
        guard let price else { return 0 }
        let (a, o1) = prompt.multipliedReportingOverflow(by: picoPerToken(price.inputPerMTok))
        let (b, o2) = completion.multipliedReportingOverflow(by: picoPerToken(price.outputPerMTok))
        let (sum, o3) = a.addingReportingOverflow(b)
        return o1 || o2 || o3 ? Int64.max : sum
    }

    /// "12.5" → 12_500_000_000_000; nil when not a plain non-negative decimal with at most 12
    /// decimals that fits.
    static func pico(_ decimal: String) -> Int64? {
        let parts = decimal.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = parts.first, !whole.isEmpty, whole.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        let frac = parts.count == 2 ? parts[1] : ""
        guard frac.utf8.count <= 12, frac.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), parts.count == 1 || !frac.isEmpty else { return nil }
        guard let w = Int64(whole), w <= 9_000_000 else { return nil }
        let padded = String(frac) + String(repeating: "0", count: 12 - frac.utf8.count)
        return w * 1_000_000_000_000 + (Int64(padded) ?? 0)
    }

    /// 12_500_000_000_000 → "12.5"; whole numbers keep no point.
    /// A decimal as PostgreSQL's numeric prints it ("0.000012000000"), without trailing zeros.
    static func normalized(_ decimal: String) -> String {
        pico(decimal).map(format) ?? decimal
    }

    static func format(_ pico: Int64) -> String {
        let negative = pico < 0
        let v = pico.magnitude
        let whole = v / 1_000_000_000_000
        var frac = String(v % 1_000_000_000_000)
        frac = String(repeating: "0", count: 12 - frac.count) + frac
        while frac.hasSuffix("0") { frac.removeLast() }
        return (negative ? "-" : "") + String(whole) + (frac.isEmpty ? "" : "." + frac)
    }
}
