/// The one bucket layout of every duration histogram: 1 ms to 60 s in roughly ×2–2.5 steps, so
/// request times, time to first token and pool waits read on the same scale.
enum LatencyBuckets {
    /// Upper bounds in nanoseconds, compared with integer clock readings (no floating point per event).
    static let boundNanos: [UInt64] = [
        1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000, 250_000_000,
        500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000, 30_000_000_000, 60_000_000_000,
    ]
    /// The `le` label of each bound, then "+Inf".
    static let labels: [String] = ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                   "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf"]
    /// Buckets per label set, the +Inf one included.
    static let count = 16
}

/// One histogram per label set (`labelCount` of them, indexed by a small integer). Counts are kept
/// per bucket, not cumulative, so an observation touches one slot; rendering cumulates them.
struct HistogramFamily: Sendable {
    let labelCount: Int
    /// `labelCount` rows of `LatencyBuckets.count` slots.
    private(set) var buckets: [UInt64]
    private(set) var sumNanos: [UInt64]

    init(labelCount: Int) {
        self.labelCount = labelCount
        buckets = Array(repeating: 0, count: labelCount * LatencyBuckets.count)
        sumNanos = Array(repeating: 0, count: labelCount)
    }

    mutating func observe(_ label: Int, nanos: UInt64) {
        guard label >= 0 && label < labelCount else { return }
        var slot = 0
        LatencyBuckets.boundNanos.withUnsafeBufferPointer { bounds in
            while slot < bounds.count && nanos > bounds[slot] { slot += 1 }
        }
        buckets[label * LatencyBuckets.count + slot] &+= 1
        sumNanos[label] &+= nanos
    }

    /// Adds another worker's counts (same layout).
    mutating func merge(_ other: HistogramFamily) {
        guard other.labelCount == labelCount else { return }
        for i in buckets.indices { buckets[i] &+= other.buckets[i] }
        for i in sumNanos.indices { sumNanos[i] &+= other.sumNanos[i] }
    }

    /// Cumulative counts for one label set, as Prometheus wants them (the last is `_count`).
    func cumulative(_ label: Int) -> [UInt64] {
        var running: UInt64 = 0
        return (0..<LatencyBuckets.count).map { i in
            running &+= buckets[label * LatencyBuckets.count + i]
            return running
        }
    }
}
