import Reactor
import Synchronization

/// Every worker's loop handle, by worker index, published once all workers are up. It is the
/// only shared thing /metrics needs: the lock is taken per scrape, never per request.
public final class WorkerDirectory: Sendable {
    private let handles = Mutex<[LoopHandle]>([])

    public init() {}

    public func publish(_ all: [LoopHandle]) {
        handles.withLock { $0 = all }
    }

    var all: [LoopHandle] { handles.withLock { $0 } }
}
