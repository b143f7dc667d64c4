import Testing
@testable import Providers

/// Regression for a bound the SSE fuzz target (Fuzz/SSEDecoderFuzz.swift) found broken.
@Suite struct SSEDecoderBoundsTests {
    /// The joining LF of a further `data:` line was appended before the size check, so a refused
    /// event left the data buffer one byte past `maxLineBytes`.
    @Test func refusedEventLeavesDataWithinItsBound() {
        var d = SSEDecoder(maxLineBytes: 12)
        // 7 + LF + 4 = 12 bytes of data: exactly the bound, accepted.
        var refusedEarly = false
        for line in ["data:xxxxxxx\n", "data:yyyy\n"] {
            Array(line.utf8).withUnsafeBytes { raw in
                do throws(SSEError) { try d.feed(raw) { _ in } } catch { refusedEarly = true }
            }
        }
        #expect(!refusedEarly)
        #expect(d.data.count == 12)
        // An empty data line still needs its joining LF: one byte too many, refused.
        var refused = false
        Array("data:\n".utf8).withUnsafeBytes { raw in
            do throws(SSEError) { try d.feed(raw) { _ in } } catch { refused = true }
        }
        #expect(refused)
        #expect(d.data.count <= 12, "data grew to \(d.data.count) past its bound")
    }
}
