#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// Kept out of main.swift so no closure is inferred @MainActor.
enum LoadGenMain {
    static func run(_ args: [String]) {
        ProcessSignals.blockTermination()
        let options: Options
        switch Options.parse(args) {
        case .success(let o): options = o
        case .failure(let e):
            Console.err(e.message)
            exit(e.message.hasPrefix("usage:") ? 0 : 2)
        }
        raiseFileLimit()
        let loop: EventLoop
        do { loop = try EventLoop() } catch {
            Console.err("chatrelay-bench: \(error)")
            exit(1)
        }
        let runner = Runner(options: options, loop: loop)
        var signals: SignalWatcher?
        do {
            signals = try SignalWatcher(loop: loop) { [unowned runner] _ in runner.interrupt() }
        } catch {
            Console.err("chatrelay-bench: signals: \(error)")
        }
        runner.start()
        loop.run()
        signals?.close()
        let report = Report(o: options, r: runner)
        if !options.quiet { for l in report.human() { Console.out(l) } }
        if let path = options.jsonPath, let err = report.write(to: path) {
            Console.err("chatrelay-bench: \(err)")
            exit(1)
        }
    }

    /// Soft limit up to the hard limit: ten thousand streams need ten thousand fds.
    static func raiseFileLimit() {
        var rl = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return }
        if rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
        }
    }
}
