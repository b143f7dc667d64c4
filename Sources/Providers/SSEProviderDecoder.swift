/// What a provider's decoder does with each SSE event, and what makes its stream complete.
protocol SSEEventHandling {
    init()
    static var provider: ProviderKind { get }
    var end: StreamTermination { get set }
    mutating func handle(_ event: SSEEventView, _ emit: (StreamEvent) -> Void)
    /// The body ended without a terminal event so far: emit `done` or the provider's own
    /// "incomplete" error (every provider marks the end of a complete stream differently).
    mutating func bodyEnded(_ emit: (StreamEvent) -> Void)
}

/// The plumbing the three provider decoders share: bytes through the one SSE decoder, events to
/// the provider's handler, a framing error as a `malformed` error event, and the end-of-body check.
struct SSEProviderDecoder<Handler: SSEEventHandling> {
    var sse = SSEDecoder()
    var state = Handler()

    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (StreamEvent) -> Void) {
        guard !state.end.isTerminated else { return }
        // Moved out so the SSE callback can mutate it while `sse` is being mutated.
        var st = Handler()
        swap(&st, &state)
        defer { swap(&st, &state) }
        do throws(SSEError) {
            try sse.feed(bytes) { st.handle($0, emit) }
        } catch {
            st.end.fail(StreamTermination.malformed(Handler.provider, error.message), emit)
        }
    }

    mutating func finish(_ emit: (StreamEvent) -> Void) {
        guard !state.end.isTerminated else { return }
        var st = Handler()
        swap(&st, &state)
        defer { swap(&st, &state) }
        do throws(SSEError) {
            try sse.finish { st.handle($0, emit) }
        } catch {
            st.end.fail(StreamTermination.malformed(Handler.provider, error.message), emit)
        }
        guard !st.end.isTerminated else { return }
        st.bodyEnded(emit)
    }
}
