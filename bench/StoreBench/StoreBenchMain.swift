#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Storage

enum StoreBenchMain {
    static let owner = "bench"

    /// Conversation ids shared with bench/store/setup.sql, so pgbench and this bench write the same rows.
    static func conversationID(_ i: Int) -> String {
        let n = String(i + 1)
        return "00000000-0000-0000-0000-" + String(repeating: "0", count: 12 - n.count) + n
    }

    static func run(_ args: [String]) {
        var conninfo = ""
        var connections = 4
        var concurrency = 64
        var seconds = 10.0
        var mode = "three"
        var i = 0
        while i + 1 < args.count {
            switch args[i] {
            case "--conninfo": conninfo = args[i + 1]
            case "--connections": connections = Int(args[i + 1]) ?? connections
            case "--concurrency": concurrency = Int(args[i + 1]) ?? concurrency
            case "--seconds": seconds = Double(args[i + 1]) ?? seconds
            case "--mode": mode = args[i + 1]
            default: Console.err("store-bench: unknown argument \(args[i])"); exit(2)
            }
            i += 2
        }
        guard !conninfo.isEmpty, let loop = try? EventLoop() else {
            Console.err("store-bench: --conninfo is required")
            exit(2)
        }
        let pool = PGPool(loop: loop, configuration: PGConfiguration(conninfo: conninfo), size: connections, maxQueue: concurrency * 4)
        pool.start()
        let store = ChatStore(pool: pool)
        var done = 0
        var failed = 0
        var running = true
        let slots = min(concurrency, 64)

        func turn(_ slot: Int) {
            guard running else { return }
            let conv = conversationID(slot % 64)
            let finish: (String) -> Void = { id in
                store.finalizeAssistantMessage(owner: owner, id: id, text: "Hello from the bench, a typical short answer.",
                                               status: .complete, finishReason: "stop",
                                               usage: TokenUsage(promptTokens: 9, completionTokens: 12, totalTokens: 21),
                                               ttftMs: 180, latencyMs: 950, error: nil) { r in
                    if case .success = r { done += 1 } else { failed += 1 }
                    turn(slot)
                }
            }
            if mode == "turn" {
                store.beginTurn(owner: owner, conversationID: conv, system: nil, userText: "Hello there", model: "mock-echo", provider: "mock") { r in
                    switch r {
                    case .success(let t): finish(t.assistantMessageID)
                    case .failure: failed += 1; turn(slot)
                    }
                }
            } else {
                store.appendUserMessage(owner: owner, conversationID: conv, text: "Hello there") { r in
                    guard case .success = r else { failed += 1; return turn(slot) }
                    store.openAssistantMessage(owner: owner, conversationID: conv, model: "mock-echo", provider: "mock") { r in
                        switch r {
                        case .success(let id): finish(id)
                        case .failure: failed += 1; turn(slot)
                        }
                    }
                }
            }
        }

        // Wait for the pool, then run for the given time.
        var started: UInt64 = 0
        func begin() {
            guard pool.isHealthy else {
                loop.schedule(afterMillis: 20) { begin() }
                return
            }
            started = monotonicNanos()
            for s in 0..<concurrency { turn(s % max(slots, 1) + (s / 64) * 0) }
            loop.schedule(afterSeconds: seconds) {
                running = false
                let elapsed = Double(monotonicNanos() - started) / 1e9
                Console.out("mode=\(mode) connections=\(connections) concurrency=\(concurrency) turns=\(done) failed=\(failed) seconds=\(String(elapsed)) turns_per_s=\(Int(Double(done) / elapsed))")
                loop.schedule(afterMillis: 500) { loop.stop() }
            }
        }
        begin()
        loop.run()
        pool.close()
    }
}
