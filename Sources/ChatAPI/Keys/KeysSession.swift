import Reactor
import Storage

/// Why a `chatrelay keys` command stopped: the line for stderr and the exit status (2: bad input,
/// nothing written; 1: the database failed).
struct KeysFailure: Error {
    let message: String
    let status: Int32

    static func input(_ m: String) -> KeysFailure { KeysFailure(message: m, status: 2) }
    static func database(_ m: String) -> KeysFailure { KeysFailure(message: m, status: 1) }
}

/// The database for one `chatrelay keys` command, the server's own: `DATABASE_URL`, else the
/// embedded PostgreSQL in `CHAT_DATA_DIR`. Queries run on a short-lived loop of its own that the
/// command waits on (a command may block; a server loop never does). The schema is brought up to
/// date first, since the command may run before any server has.
final class KeysSession {
    let loop: EventLoop
    let pool: PGPool
    let store: KeyStore
    /// Set only when this command started the embedded cluster: then it stops it again. A cluster
    /// that was already running (a server's) is left alone.
    private let startedCluster: EmbeddedPostgres?
    private let timeoutSeconds = 30.0

    private init(loop: EventLoop, pool: PGPool, startedCluster: EmbeddedPostgres?) {
        self.loop = loop
        self.pool = pool
        self.startedCluster = startedCluster
        store = KeyStore(pool: pool)
    }

    static func open(_ config: Config) -> Result<KeysSession, KeysFailure> {
        var conninfo: String
        var started: EmbeddedPostgres?
        if let url = config.databaseURL {
            conninfo = url
        } else {
            let pg = EmbeddedPostgres(dataDir: config.dataDir)
            do {
                let wasRunning = try pg.isRunning()
                let isNew = !FileSystem.exists(pg.dataPath + "/PG_VERSION")
                conninfo = try pg.start()
                if !wasRunning { started = pg }
                if isNew {
                    // Run from the wrong folder, the command would keep keys no server reads: say where they go.
                    Environment.printError("chatrelay keys: no database in \(pg.dataPath) yet: created one; "
                        + "a server started with CHAT_DATA_DIR=\(config.dataDir) uses it")
                }
            } catch {
                return .failure(.database("DATABASE_URL is not set and the embedded PostgreSQL in \(config.dataDir) could not start: \(error)"))
            }
        }
        let loop: EventLoop
        do { loop = try EventLoop() } catch {
            stopCluster(started)
            return .failure(.database("cannot create an event loop: \(error)"))
        }
        let pgConfig = PGConfiguration(conninfo: conninfo, statementTimeoutMillis: 60_000, applicationName: "chatrelay-keys")
        let pool = PGPool(loop: loop, configuration: pgConfig, size: 1)
        pool.start()
        let session = KeysSession(loop: loop, pool: pool, startedCluster: started)
        if case .failure(let e) = session.wait({ Migrations.apply(pool: pool, completion: $0) }) {
            session.close()
            return .failure(.database("the database is not usable: \(e)"))
        }
        return .success(session)
    }

    /// Runs one store call and waits for its answer (or gives up after `timeoutSeconds`).
    func wait<T>(_ call: (@escaping (Result<T, StoreError>) -> Void) -> Void) -> Result<T, StoreError> {
        var outcome: Result<T, StoreError>?
        let loop = self.loop
        call { r in
            if outcome == nil { outcome = r }
            loop.stop()
        }
        if outcome == nil {
            let ms = Int(timeoutSeconds * 1000)
            let timer = loop.schedule(afterSeconds: timeoutSeconds) {
                outcome = .failure(.database(.timeout(milliseconds: ms)))
                loop.stop()
            }
            loop.run()
            loop.cancel(timer)
        }
        return outcome ?? .failure(.database(.client("no answer")))
    }

    func close() {
        pool.close()
        KeysSession.stopCluster(startedCluster)
    }

    /// Stops a cluster this command started, unless someone connected meanwhile (a server that
    /// started during the command reuses the running cluster, and must keep it).
    private static func stopCluster(_ pg: EmbeddedPostgres?) {
        guard let pg else { return }
        let others = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        if case .success(let r) = PGBlocking.execute(conninfo: pg.conninfo, others), let n = r.rows.first?.first ?? nil, n != "0" {
            Environment.printError("chatrelay keys: leaving the embedded PostgreSQL running: \(n) other connection(s) use it")
            return
        }
        do { try pg.stop() } catch {
            Environment.printError("chatrelay keys: the embedded PostgreSQL did not stop cleanly: \(error)")
        }
    }
}
