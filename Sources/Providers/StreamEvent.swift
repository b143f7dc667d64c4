/// What an upstream stream means, provider-neutral. A well-formed stream yields text…, finish,
/// usage (when reported), then `done`; a failed one ends with `error` instead. Nothing follows
/// `done` or `error`.
public enum StreamEvent: Sendable, Equatable {
    case text(String)
    case usage(Usage)
    case finish(FinishReason)
    case error(ProviderError)
    case done
}

/// Turns one provider's response body, fed in arbitrary chunks, into `StreamEvent`s.
public protocol ProviderStreamDecoder {
    /// Consumes the next bytes of the body.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (StreamEvent) -> Void)
    /// The body ended. Emits `upstream_incomplete` if the provider's terminator never came.
    mutating func finish(_ emit: (StreamEvent) -> Void)
}

/// Bookkeeping every provider decoder shares: the terminal latch and common error values.
struct StreamTermination {
    private(set) var isTerminated = false

    mutating func done(_ emit: (StreamEvent) -> Void) {
        guard !isTerminated else { return }
        isTerminated = true
        emit(.done)
    }

    mutating func fail(_ error: ProviderError, _ emit: (StreamEvent) -> Void) {
        guard !isTerminated else { return }
        isTerminated = true
        emit(.error(error))
    }

    static func malformed(_ provider: ProviderKind, _ detail: String) -> ProviderError {
        ProviderError(.malformed, "\(provider.rawValue) sent a malformed stream chunk: \(detail)", upstreamStatus: 200)
    }

    static func incomplete(_ provider: ProviderKind, expected: String) -> ProviderError {
        ProviderError(.upstreamIncomplete, "\(provider.rawValue) stream ended before \(expected)", upstreamStatus: 200)
    }
}
