import Reactor
import Synchronization

/// A one-shot gate the main thread waits on while a worker starts.
final class Latch: Sendable {
    private let state = Mutex<Bool>(false)
    func open() { state.withLock { $0 = true } }
    func wait() {
        // Start-up only, before any loop runs: a short sleep-poll keeps this free of condition variables.
        while !state.withLock({ $0 }) { ReactorThread.sleep(microseconds: 200) }
    }
}

/// Carries a worker's loop handle back to the main thread.
final class HandleBox: Sendable {
    private let value = Mutex<LoopHandle?>(nil)
    func set(_ h: LoopHandle) { value.withLock { $0 = h } }
    func get() -> LoopHandle? { value.withLock { $0 } }
}

/// Counts running workers; the last one to stop stops the signal loop.
final class WorkerCounter: Sendable {
    private let n: Mutex<Int>
    init(_ count: Int) { n = Mutex(count) }
    func decrement() -> Int { n.withLock { $0 -= 1; return $0 } }
}

/// The process environment and files, without Foundation.
public enum Environment {
    public static func current() -> [String: String] { ProcessEnvironment.variables() }

    /// The whole file as UTF-8 text, or nil when it does not exist or cannot be read.
    public static func readFile(_ path: String) -> String? { FileSystem.readFile(path) }

    public static func printError(_ line: String) { Console.err(line) }
}
