import Providers
import Reactor
import Storage

/// Start-up and shutdown of the whole process: configuration, listeners, N worker threads, and
/// the signal loop on the main thread that turns SIGTERM/SIGINT into a drain of every worker.
public enum Application {
    public static let version = "0.1.0"

    /// Runs the server; returns the process exit code.
    public static func main(arguments: [String]) -> Int32 {
        // `chatrelay keys ...` is a short command, not a server: Ctrl-C must still stop it.
        if arguments.first == "keys" { return KeysCommand.run(Array(arguments.dropFirst())) }
        // Before any thread exists (ours or curl's resolver), so only the signalfd sees SIGTERM.
        ProcessSignals.blockTermination()
        if arguments.contains("--help") || arguments.contains("-h") {
            print(ConfigLoader.usage)
            return 0
        }
        var arguments = arguments
        var checkOnly = false
        if let i = arguments.firstIndex(of: "--check-models") {
            // Validate a catalog (before a deploy or a SIGHUP) without starting anything.
            arguments.remove(at: i)
            checkOnly = true
            if i < arguments.count, !arguments[i].hasPrefix("--") { arguments[i] = "--models-file=" + arguments[i] }
        }
        let config: Config
        do {
            config = try ConfigLoader.load(arguments: arguments, environment: Environment.current(), dotEnv: Environment.readFile(".env"))
        } catch {
            Environment.printError("chatrelay: \(error)")
            return 2
        }
        let catalog: ModelCatalog
        switch CatalogLoading.load(config, version: 1) {
        case .failure(let e):
            Environment.printError("chatrelay: \(e)")
            return 2
        case .success(let c): catalog = c
        }
        if checkOnly {
            let unavailable = catalog.models.filter { !$0.isAvailable }.map(\.name)
            print("\(catalog.source): ok, \(catalog.models.count) models, \(catalog.models.reduce(0) { $0 + $1.deployments.count }) deployments"
                  + (unavailable.isEmpty ? "" : "; unavailable until their keys are set: \(unavailable.joined(separator: ", "))"))
            return 0
        }
        let startNanos = monotonicNanos()
        _ = CurlGlobal.initialize()
        let startup = Logger(format: config.logFormat, level: config.logLevel, worker: -1, loop: nil)
        var catalogStatus = CatalogStatus(loaded: catalog, at: Double(wallClockMillis()) / 1000)
        logCatalog(catalog, startup)

        guard let keys = loadKeys(config) else { return 1 }
        let database: Database
        switch Database.open(config, logger: startup) {
        case .failure(let message):
            Environment.printError("chatrelay: \(message)")
            return 1
        case .success(let db): database = db
        }
        defer { database.stop(logger: startup) }
        // After the embedded database made the data folder its way; the workers replay into it.
        if let dir = config.journalDir {
            do { try FileSystem.makeDirectories(dir, mode: 0o700) } catch {
                Environment.printError("chatrelay: cannot create the journal folder CHAT_JOURNAL_DIR=\(dir): \(error)")
                return 1
            }
        }
        let shared = SharedState(config: config, version: version, conninfo: database.conninfo, keys: keys, catalog: catalog,
                                 catalogStatus: catalogStatus, startedAtNanos: startNanos)

        // Bind every worker's socket first: with PORT=0 the first one picks the port the rest share.
        var fds: [Int32] = []
        var port = config.port
        for _ in 0..<config.workers {
            do {
                let fd = try Sockets.listen(host: config.host, port: port, reusePort: true)
                if port == 0 { port = Sockets.localPort(fd) }
                fds.append(fd)
            } catch {
                Environment.printError("chatrelay: cannot listen on \(config.host):\(config.port): \(error)")
                for fd in fds { Sockets.close(fd) }
                return 1
            }
        }

        let control: EventLoop
        do { control = try EventLoop() } catch {
            Environment.printError("chatrelay: \(error)")
            return 1
        }
        var handles: [LoopHandle] = []
        var threads: [ReactorThread.Handle] = []
        let controlHandle = control.handle
        let remaining = WorkerCounter(config.workers)
        for (i, fd) in fds.enumerated() {
            let ready = Latch()
            let handleBox = HandleBox()
            guard let t = ReactorThread.spawn(name: "worker-\(i)", {
                do {
                    let w = try Worker(index: i, shared: shared, listeningFD: fd)
                    handleBox.set(w.loop.handle)
                    ready.open()
                    w.run()
                } catch {
                    Environment.printError("chatrelay: worker \(i) failed to start: \(error)")
                    ready.open()
                }
                if remaining.decrement() == 0 { controlHandle.stop() }
            }) else {
                Environment.printError("chatrelay: cannot start worker thread \(i)")
                return 1
            }
            ready.wait()
            guard let h = handleBox.get() else { return 1 }
            handles.append(h)
            threads.append(t)
        }
        shared.workers.publish(handles)
        let startupMs = Double(monotonicNanos() - startNanos) / 1e6
        startup.info("listening", [("host", .string(config.host)), ("port", .int(port)), ("workers", .int(config.workers)),
                                   ("version", .string(version)), ("startup_ms", .double(startupMs))])

        var signals: SignalWatcher?
        do {
            var current = catalog
            signals = try SignalWatcher(loop: control, signals: ProcessSignals.termination + [ProcessSignals.reload]) { sig in
                if sig == ProcessSignals.reload {
                    current = reloadCatalog(config, current: current, status: &catalogStatus, workers: handles, logger: startup)
                    return
                }
                startup.info("signal received; draining", [("signal", .int(Int(sig))), ("drain_s", .double(config.drainSeconds))])
                for h in handles { h.post(.drain) }
            }
        } catch {
            Environment.printError("chatrelay: \(error)")
        }
        control.run()
        signals?.close()
        for t in threads { ReactorThread.join(t) }
        startup.info("stopped")
        return 0
    }

    /// SIGHUP: read the catalog again. A good one goes to every worker (turns that start afterwards
    /// use it; turns under way keep the deployment they hold); a bad one is refused with the same
    /// one-line error as at start-up, and the catalog in force stays.
    static func reloadCatalog(_ config: Config, current: ModelCatalog, status: inout CatalogStatus, workers: [LoopHandle],
                              logger: Logger) -> ModelCatalog {
        let now = Double(wallClockMillis()) / 1000
        var next = current
        switch CatalogLoading.load(config, version: current.version + 1) {
        case .failure(let e):
            status.lastReloadSucceeded = false
            status.reloadsFailed += 1
            logger.error("catalog reload refused; the previous catalog stays in force",
                         [("error", .string(e.description)), ("version", .int(current.version))])
        case .success(let c):
            next = c
            status.version = c.version
            status.source = c.source
            status.models = c.models.count
            status.lastReloadSucceeded = true
            status.reloadsSucceeded += 1
            logCatalog(c, logger, reloaded: true)
        }
        status.lastReloadAt = now
        let snapshot = status
        let installed = next
        for h in workers {
            h.run { loop in (loop.owner as? Worker)?.installCatalog(installed, status: snapshot) }
        }
        return next
    }

    static func logCatalog(_ c: ModelCatalog, _ logger: Logger, reloaded: Bool = false) {
        let unavailable = c.models.filter { !$0.isAvailable }.map(\.name)
        var fields: [(String, Logger.Value)] = [("source", .string(c.source)), ("version", .int(c.version)), ("models", .int(c.models.count))]
        if !unavailable.isEmpty { fields.append(("unavailable", .string(unavailable.joined(separator: ",")))) }
        logger.info(reloaded ? "catalog reloaded" : "catalog loaded", fields)
    }

    /// CHAT_API_KEYS, or the key kept in the data folder (generated and printed on first start).
    static func loadKeys(_ config: Config) -> APIKeys? {
        if !config.apiKeys.isEmpty { return APIKeys(keys: config.apiKeys) }
        switch APIKeys.loadOrGenerate(dataDir: config.dataDir) {
        case .failure(let e):
            Environment.printError("chatrelay: cannot keep a generated API key in \(config.dataDir): \(e)")
            return nil
        case .success(let (key, generated)):
            if generated {
                Environment.printError("chatrelay: no CHAT_API_KEYS set; generated an API key (kept in \(config.dataDir)/api-key):\n\n    \(key)\n")
            } else {
                Environment.printError("chatrelay: no CHAT_API_KEYS set; using the key in \(config.dataDir)/api-key")
            }
            return APIKeys(keys: [key])
        }
    }
}
