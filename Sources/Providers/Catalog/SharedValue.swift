/// One immutable heap copy of a catalog value, shared by every copy of the struct that wraps it.
/// A routed model is held by the turn, its resilient upstream, each attempt, the shared answer
/// and a multi-model turn at once, for the whole of a stream: stored inline, each holder kept its
/// own few hundred bytes (strings retained one by one); boxed, a copy is one retain. Setters
/// (used while a catalog is read, never per stream) build a new box, so a value already handed
/// out never changes under its holder.
final class SharedValue<Value: Sendable>: Sendable {
    let value: Value

    init(_ value: Value) {
        self.value = value
    }

    /// A new box with `change` applied; holders of this one keep what they had.
    func updated(_ change: (inout Value) -> Void) -> SharedValue<Value> {
        var v = value
        change(&v)
        return SharedValue(v)
    }
}
