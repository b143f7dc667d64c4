import Providers
import Testing
@testable import ChatAPI

@Suite struct UsageUnit {
    @Test func costsAreExactPicodollars() {
        // $0.15 and $0.60 per million tokens: 150,000 and 600,000 picodollars a token.
        let price = Price(inputPerMTok: 0.15, outputPerMTok: 0.6)
        #expect(USD.costPico(prompt: 7, completion: 5, price: price) == 7 * 150_000 + 5 * 600_000)
        #expect(USD.format(USD.costPico(prompt: 7, completion: 5, price: price)) == "0.00000405")
        #expect(USD.costPico(prompt: 1_000, completion: 1_000, price: nil) == 0)
        #expect(USD.costPico(prompt: Int64.max, completion: 1, price: price) == Int64.max)
        #expect(USD.picoPerToken(0.0375) == 37_500)
    }

    @Test func budgetsParseAsPlainDecimals() {
        #expect(USD.pico("12.5") == 12_500_000_000_000)
        #expect(USD.pico("0.000000000001") == 1)
        #expect(USD.pico("3") == 3_000_000_000_000)
        for bad in ["", "-1", "1e3", "1.", ".5", "1.0000000000001", "abc", "1.2.3", "99999999999"] {
            #expect(USD.pico(bad) == nil, "\(bad)")
        }
        #expect(USD.format(12_500_000_000_000) == "12.5")
        #expect(USD.format(0) == "0")
    }

    @Test func civilDatesRoundTrip() throws {
        #expect(CivilDate("1970-01-01")?.days == 0)
        #expect(CivilDate("2025-12-02")?.days == 20_424)
        #expect(CivilDate("2024-02-29")?.text == "2024-02-29")
        for bad in ["2023-02-29", "2026-13-01", "2026-1-01", "26-01-01", "2026/01/01", "1969-12-31"] {
            #expect(CivilDate(bad) == nil, "\(bad)")
        }
        for d in stride(from: 0, to: 40_000, by: 37) { #expect(CivilDate(CivilDate(days: d).text)?.days == d) }
    }

    @Test func resetDurationsAsOpenAIWritesThem() {
        #expect(RateLimitHeaders.duration(120) == "120ms")
        #expect(RateLimitHeaders.duration(12_000) == "12s")
        #expect(RateLimitHeaders.duration(90_000) == "1m30s")
        #expect(RateLimitHeaders.duration(1_001) == "2s")
    }
}
