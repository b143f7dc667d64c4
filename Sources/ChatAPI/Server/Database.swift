import Reactor
import Storage

/// The database the workers share: DATABASE_URL, or an embedded PostgreSQL in CHAT_DATA_DIR.
/// Migrations and the interrupted-answer sweep run here, once, before any worker serves.
struct Database {
    let conninfo: String
    let embedded: EmbeddedPostgres?

    enum OpenResult {
        case success(Database)
        case failure(String)
    }

    static func open(_ config: Config, logger: Logger) -> OpenResult {
        var conninfo: String
        var embedded: EmbeddedPostgres?
        if let url = config.databaseURL {
            conninfo = url
        } else {
            let pg = EmbeddedPostgres(dataDir: config.dataDir)
            do {
                conninfo = try pg.start()
            } catch {
                return .failure("DATABASE_URL is not set and the embedded PostgreSQL could not start: \(error)")
            }
            embedded = pg
            logger.info("embedded PostgreSQL started", [("data_dir", .string(pg.dataPath))])
        }
        let db = Database(conninfo: conninfo, embedded: embedded)
        switch db.migrate() {
        case .success(let (version, interrupted)):
            logger.info("database ready", [("schema_version", .int(version)), ("interrupted_answers", .int(interrupted))])
            return .success(db)
        case .failure(let message):
            db.stop(logger: logger)
            return .failure(message.description)
        }
    }

    /// Runs the store's start-up (migrations under an advisory lock, then the sweep) on a
    /// short-lived loop; start-up may wait, serving may not.
    private func migrate() -> Result<(Int, Int), MigrationFailure> {
        guard let loop = try? EventLoop() else { return .failure(MigrationFailure("cannot create an event loop")) }
        let pool = PGPool(loop: loop, configuration: PGConfiguration(conninfo: conninfo, statementTimeoutMillis: 120_000), size: 1)
        pool.start()
        let store = ChatStore(pool: pool)
        var outcome: Result<(Int, Int), MigrationFailure>?
        store.startUp { result in
            switch result {
            case .success(let r): outcome = .success((r.schemaVersion, r.interrupted))
            case .failure(let e): outcome = .failure(MigrationFailure("database start-up failed: \(e)"))
            }
            loop.stop()
        }
        let timeout = loop.schedule(afterSeconds: 60) {
            outcome = .failure(MigrationFailure("database start-up timed out after 60 s (is \(conninfo.contains("password") ? "the database" : conninfo) reachable?)"))
            loop.stop()
        }
        if outcome == nil { loop.run() }
        loop.cancel(timeout)
        pool.close()
        return outcome ?? .failure(MigrationFailure("database start-up did not finish"))
    }

    func stop(logger: Logger) {
        guard let embedded else { return }
        do {
            try embedded.stop()
            logger.info("embedded PostgreSQL stopped")
        } catch {
            logger.error("embedded PostgreSQL did not stop cleanly", [("error", .string("\(error)"))])
        }
    }
}

struct MigrationFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
