import Foundation
import Reactor
import Storage
import Testing

/// The PostgreSQL every test in this process uses: `CHAT_TEST_DATABASE_URL`, or a throw-away
/// embedded cluster in a temporary folder, started once per test process and stopped at exit.
struct TestCluster: Sendable {
    let conninfo: String
    let embedded: EmbeddedPostgres?
    let tempDir: String?
    let startSeconds: Double

    static let shared: Result<TestCluster, StorageStartupError> = {
        if let url = ProcessInfo.processInfo.environment["CHAT_TEST_DATABASE_URL"], !url.isEmpty {
            return .success(TestCluster(conninfo: url, embedded: nil, tempDir: nil, startSeconds: 0))
        }
        let base = NSTemporaryDirectory() + "chatrelay-pgtest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            // Running as root, postgres runs as the `postgres` user, which must traverse this folder.
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: base)
        } catch {
            return .failure(StorageStartupError("cannot create \(base): \(error)"))
        }
        let pg = EmbeddedPostgres(dataDir: base + "/data")
        let t0 = Date()
        do {
            let conninfo = try pg.start()
            let took = Date().timeIntervalSince(t0)
            print("[StorageTests] embedded PostgreSQL ready in \(String(format: "%.2f", took)) s at \(pg.socketDir)")
            atexit { TestCluster.stopAtExit() }
            return .success(TestCluster(conninfo: conninfo, embedded: pg, tempDir: base, startSeconds: took))
        } catch {
            return .failure(error as? StorageStartupError ?? StorageStartupError("\(error)"))
        }
    }()

    static func stopAtExit() {
        guard case .success(let c) = shared, let pg = c.embedded else { return }
        try? pg.stop(mode: .immediate)
        if let dir = c.tempDir { try? FileManager.default.removeItem(atPath: dir) }
    }

    static func get() throws -> TestCluster { try shared.get() }

    /// Whether the tests run their own embedded cluster (no `CHAT_TEST_DATABASE_URL`): tests that
    /// stop or restart the server need it, and are skipped (not passed) against an external one.
    static var isEmbedded: Bool {
        ProcessInfo.processInfo.environment["CHAT_TEST_DATABASE_URL"].map { $0.isEmpty } ?? true
    }
}

/// Drives `loop` until `done()` or until the watchdog fires; on timeout the test fails with a dump.
@discardableResult
func drive(_ loop: EventLoop, seconds: Double = 20, _ what: String = "", dump: () -> String,
           until done: () -> Bool) -> Bool {
    var fired = false
    let watchdog = loop.schedule(afterSeconds: seconds) { fired = true }
    defer { loop.cancel(watchdog) }
    while !done() {
        if fired {
            Issue.record("watchdog: \(what) did not finish within \(seconds) s\nregistrations=\(loop.registrationCount) timers=\(loop.liveTimerCount)\n\(dump())")
            return false
        }
        loop.tick(block: true)
    }
    return true
}

/// One loop + pool + store per test; the pool is closed at the end.
final class Fixture {
    let loop: EventLoop
    let pool: PGPool
    let store: ChatStore
    let cluster: TestCluster

    init(size: Int = 2, maxQueue: Int = 64, configure: (inout PGConfiguration) -> Void = { _ in }) throws {
        cluster = try TestCluster.get()
        loop = try EventLoop()
        var config = PGConfiguration(conninfo: cluster.conninfo)
        configure(&config)
        pool = PGPool(loop: loop, configuration: config, size: size, maxQueue: maxQueue)
        store = ChatStore(pool: pool)
        pool.start()
        let r = wait("startUp") { store.startUp(completion: $0) }
        if case .failure(let e)? = r { Issue.record("startUp failed: \(e)") }
    }

    deinit { pool.close() }

    /// Starts an async call and drives the loop until its completion ran.
    func wait<T>(_ what: String = "", seconds: Double = 20, _ start: (@escaping (T) -> Void) -> Void) -> T? {
        var out: T?
        start { out = $0 }
        drive(loop, seconds: seconds, what, dump: { pool.debugDescription }) { out != nil }
        return out
    }

    func sql(_ q: String, _ params: [String?] = []) -> PGResult? {
        guard let r = wait(q, { pool.query(q, params, completion: $0) }) else { return nil }
        switch r {
        case .success(let v): return v
        case .failure(let e): Issue.record("\(q): \(e)"); return nil
        }
    }

    func waitHealthy(_ healthy: Bool, seconds: Double = 20) -> Bool {
        drive(loop, seconds: seconds, "pool healthy=\(healthy)", dump: { pool.debugDescription }) { pool.isHealthy == healthy }
    }
}

func uniqueOwner() -> String { "owner-" + UUID().uuidString.lowercased() }

/// All storage tests run one at a time: some stop and restart the shared server.
@Suite(.serialized) enum StorageTests {}

/// The SQLSTATE of a failed result, or nil.
func sqlState(_ r: Result<PGResult, PGError>?) -> String? {
    if case .failure(let e)? = r { return e.sqlState }
    return nil
}

func isStoreError<T>(_ r: Result<T, StoreError>?, _ expected: StoreError) -> Bool {
    if case .failure(let e)? = r { return e == expected }
    return false
}
