import Providers

/// How an upstream request ended: a small fixed set, so the label stays bounded.
enum UpstreamOutcome: Int, CaseIterable, Sendable {
    /// The provider's stream ended normally.
    case complete
    /// A failure after the provider accepted the request, or one that never reached an answer (connect, DNS, TLS).
    case error
    /// The client left (or the server shut down) and the gateway stopped the request.
    case cancelled
    /// Connect, first-token or idle timeout.
    case timeout
    /// The provider answered with a non-200 status before any stream.
    case rejected

    /// `allCases.count` without building the array (allCases is computed on every access).
    static let count = 5

    var name: String {
        switch self {
        case .complete: return "complete"
        case .error: return "error"
        case .cancelled: return "cancelled"
        case .timeout: return "timeout"
        case .rejected: return "rejected"
        }
    }
}

extension ProviderKind {
    /// Row of this provider in the metrics tables (a switch: `allCases.firstIndex` would build an array per call).
    var metricsIndex: Int {
        switch self {
        case .openai: return 0
        case .anthropic: return 1
        case .gemini: return 2
        case .mock: return 3
        }
    }

    static let metricsNames: [String] = [ProviderKind.openai, .anthropic, .gemini, .mock].map(\.rawValue)
}

/// Per-worker counters of the provider side of chat turns, updated on the loop thread only.
final class UpstreamMetrics {
    static let providerCount = ProviderKind.metricsNames.count
    private(set) var outcomes = [UInt64](repeating: 0, count: providerCount * UpstreamOutcome.count)
    private(set) var timeToFirstToken = HistogramFamily(labelCount: providerCount)
    private(set) var tokensRelayed = [UInt64](repeating: 0, count: providerCount)

    func firstToken(_ provider: ProviderKind, afterNanos nanos: UInt64) {
        timeToFirstToken.observe(provider.metricsIndex, nanos: nanos)
    }

    func tokenRelayed(_ provider: ProviderKind) {
        tokensRelayed[provider.metricsIndex] &+= 1
    }

    /// The stream ended (`error` nil: normally). `accepted`: the provider had answered 200 first.
    func ended(_ provider: ProviderKind, error: ProviderError?, accepted: Bool) {
        let outcome: UpstreamOutcome
        if let error {
            if error.kind == .upstreamTimeout {
                outcome = .timeout
            } else if !accepted, let status = error.upstreamStatus, status != 200 {
                outcome = .rejected
            } else {
                outcome = .error
            }
        } else {
            outcome = .complete
        }
        count(provider, outcome)
    }

    func cancelled(_ provider: ProviderKind) { count(provider, .cancelled) }

    private func count(_ provider: ProviderKind, _ outcome: UpstreamOutcome) {
        outcomes[provider.metricsIndex * UpstreamOutcome.count + outcome.rawValue] &+= 1
    }
}
