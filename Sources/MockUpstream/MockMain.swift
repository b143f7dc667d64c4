#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// Argument parsing and the loop; kept out of main.swift so no closure is inferred @MainActor.
enum MockMain {
    static func run(_ args: [String]) {
        ProcessSignals.blockTermination()
        var host = "127.0.0.1"
        var port = 0
        var options = MockServer.Options()
        var i = 0
        func value() -> String? {
            i += 1
            return i < args.count ? args[i] : nil
        }
        while i < args.count {
            switch args[i] {
            case "--host": host = value() ?? host
            case "--port": port = Int(value() ?? "") ?? port
            case "--tokens": options.defaults.tokens = Int(value() ?? "") ?? options.defaults.tokens
            case "--delay-ms": options.defaults.delayMs = Double(value() ?? "") ?? 0
            case "--first-delay-ms": options.defaults.firstDelayMs = Double(value() ?? "") ?? 0
            case "--stamp": options.defaults.stamp = true
            case "--key": options.requiredKey = value()
            default:
                Console.err("mock-upstream: unknown argument \(args[i])")
                exit(2)
            }
            i += 1
        }
        do {
            let loop = try EventLoop()
            let fd = try Sockets.listen(host: host, port: port, reusePort: false)
            let server = try MockServer(loop: loop, listeningFD: fd, options: options)
            let signals = try SignalWatcher(loop: loop) { _ in loop.stop() }
            Console.out("mock-upstream listening on \(host):\(server.server.port)")
            loop.run()
            signals.close()
            server.server.closeAll()
        } catch {
            Console.err("mock-upstream: \(error)")
            exit(1)
        }
    }
}
