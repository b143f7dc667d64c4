import Providers

/// A turn's request, held once for the turn (its prompt estimate when billing) and its resilient
/// upstream (each attempt's request): inline, each kept its own hundred-odd bytes for as long as
/// the stream stays open.
final class SharedRequest {
    let value: ChatRequest

    init(_ value: ChatRequest) {
        self.value = value
    }
}
