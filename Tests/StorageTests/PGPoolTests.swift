import Foundation
import Reactor
import Storage
import Testing

extension StorageTests {
    @Suite struct PGPoolTests {
        @Test func loopStaysResponsiveDuringSlowQuery() throws {
            let f = try Fixture(size: 1)
            var ticks = 0
            var timer: TimerID?
            func arm() { timer = f.loop.schedule(afterMillis: 10) { ticks += 1; arm() } }
            arm()
            let start = monotonicNanos()
            let r = f.wait("pg_sleep(1)") { f.pool.query("SELECT pg_sleep(1)", completion: $0) }
            if let timer { f.loop.cancel(timer) }
            let ms = Double(monotonicNanos() - start) / 1e6
            #expect((try? r?.get()) != nil)
            #expect(ms >= 950)
            #expect(ticks >= 50, "the 10 ms timer fired only \(ticks) times in \(ms) ms")
        }

        @Test func overloadIsImmediate() throws {
            let f = try Fixture(size: 1, maxQueue: 2)
            var results: [Result<PGResult, PGError>?] = Array(repeating: nil, count: 4)
            for i in 0..<3 { f.pool.query("SELECT pg_sleep(0.2)") { results[i] = $0 } }
            f.pool.query("SELECT 1") { results[3] = $0 }
            // No loop tick has run: the fourth call was refused synchronously.
            #expect(results[3] == .failure(.overloaded))
            drive(f.loop, "queued queries", dump: { f.pool.debugDescription }) { results.allSatisfy { $0 != nil } }
            for i in 0..<3 { #expect((try? results[i]?.get()) != nil) }
        }

        @Test func groupCommitSharesOneTransactionWhileTheConnectionIsBusy() throws {
            let f = try Fixture(size: 1)
            let owner = uniqueOwner()
            var busy: Result<PGResult, PGError>?
            f.pool.query("SELECT pg_sleep(0.2)") { busy = $0 }
            let ids = (0..<10).map { _ in UUID().uuidString.lowercased() }
            var done: [[Result<PGResult, PGError>]?] = Array(repeating: nil, count: ids.count)
            for (i, id) in ids.enumerated() {
                f.pool.pipeline([PGQuery("INSERT INTO conversations (id, owner_key_hash) VALUES ($1::uuid, $2)", [id, owner])],
                                groupCommit: true) { done[i] = $0 }
            }
            drive(f.loop, "group writes", dump: { f.pool.debugDescription }) { busy != nil && done.allSatisfy { $0 != nil } }
            for r in done { #expect(r?.first.map { (try? $0.get())?.affectedRows } == 1) }
            // Rows written by one transaction share its id (xmin).
            let xids = f.sql("SELECT count(DISTINCT xmin::text) FROM conversations WHERE owner_key_hash = $1", [owner])
            #expect(xids?.rows.first?.first ?? nil == "1")
        }

        @Test func groupCommitKeepsOneWritesFailureItsOwn() throws {
            let f = try Fixture(size: 1)
            let owner = uniqueOwner()
            var busy: Result<PGResult, PGError>?
            f.pool.query("SELECT pg_sleep(0.2)") { busy = $0 }
            let a = UUID().uuidString.lowercased(), c = UUID().uuidString.lowercased()
            let insert = "INSERT INTO conversations (id, owner_key_hash) VALUES ($1::uuid, $2)"
            var results: [[Result<PGResult, PGError>]?] = [nil, nil, nil]
            f.pool.pipeline([PGQuery(insert, [a, owner])], groupCommit: true) { results[0] = $0 }
            f.pool.pipeline([PGQuery(insert, ["not-a-uuid", owner])], groupCommit: true) { results[1] = $0 }
            f.pool.pipeline([PGQuery(insert, [c, owner])], groupCommit: true) { results[2] = $0 }
            drive(f.loop, "group with a failure", dump: { f.pool.debugDescription }) { busy != nil && results.allSatisfy { $0 != nil } }
            #expect(results[0]?.first.map { (try? $0.get())?.affectedRows } == 1)
            #expect(results[2]?.first.map { (try? $0.get())?.affectedRows } == 1)
            #expect(sqlState(results[1]?.first) == "22P02")  // invalid_text_representation
            let n = f.sql("SELECT count(*) FROM conversations WHERE owner_key_hash = $1", [owner])
            #expect(n?.rows.first?.first ?? nil == "2")
        }

        @Test func pipelineFailureAbortsRestAndRollsBack() throws {
            let f = try Fixture()
            let owner = uniqueOwner()
            let good = "11111111-1111-4111-8111-" + String(UUID().uuidString.suffix(12)).lowercased()
            let results = try #require(f.wait("pipeline") {
                f.pool.pipeline([
                    PGQuery("INSERT INTO conversations (id, owner_key_hash) VALUES ($1::uuid, $2)", [good, owner]),
                    PGQuery("INSERT INTO messages (id, conversation_id, role) VALUES (gen_random_uuid(), $1::uuid, 'robot')", [good]),
                    PGQuery("SELECT 1"),
                ], completion: $0)
            })
            #expect(results.count == 3)
            #expect(sqlState(results[1]) == "23514")  // check_violation
            #expect(results[2] == .failure(.aborted))
            #expect(f.sql("SELECT count(*) FROM conversations WHERE id = $1::uuid", [good])?.rows.first?.first ?? nil == "0")
            // The connection is still usable afterwards.
            #expect(f.sql("SELECT 42")?.rows.first?.first ?? nil == "42")
        }

        @Test func preparedStatementsAndParameters() throws {
            let f = try Fixture(size: 1)
            for i in 0..<3 {
                let r = f.wait { f.pool.query("SELECT $1::int + 1 AS n, $2::text AS t", [String(i), nil], prepared: "t_add", completion: $0) }
                let v = try #require(try r?.get())
                #expect(v.columns == ["n", "t"] && v.rows == [[String(i + 1), nil]])
            }
            let text = "quote ' backslash \\ unicode ✓"
            #expect(f.sql("SELECT $1::text", [text])?.rows.first?.first ?? nil == text)
            let syntax = f.wait { f.pool.query("SELEC nonsense", completion: $0) }
            #expect(sqlState(syntax) == "42601")
        }

        @Test func timeouts() throws {
            // Server side: statement_timeout set at connect cancels the statement; connection survives.
            let f = try Fixture(size: 1) { $0.statementTimeoutMillis = 200 }
            let r = f.wait { f.pool.query("SELECT pg_sleep(2)", completion: $0) }
            #expect(sqlState(r) == "57014")
            #expect(f.sql("SELECT 1") != nil)

            // Client side: our loop timer fails the query and drops the connection; the pool replaces it.
            let g = try Fixture(size: 1) { $0.statementTimeoutMillis = 0; $0.queryTimeoutMillis = 300 }
            let t0 = monotonicNanos()
            let r2 = g.wait { g.pool.query("SELECT pg_sleep(3)", completion: $0) }
            #expect(r2 == .failure(.timeout(milliseconds: 300)))
            #expect(monotonicNanos() - t0 < 2_000_000_000)
            #expect(g.waitHealthy(true))
            #expect(g.sql("SELECT 1") != nil)
        }

        @Test func badConninfoFailsCleanly() throws {
            let loop = try EventLoop()
            let pool = PGPool(loop: loop, configuration: PGConfiguration(conninfo: "host=/nonexistent-dir port=1 dbname=x", connectTimeoutMillis: 1000), size: 1)
            pool.start()
            defer { pool.close() }
            var r: Result<PGResult, PGError>?
            pool.query("SELECT 1") { r = $0 }
            drive(loop, seconds: 10, "query on bad conninfo", dump: { pool.debugDescription }) { r != nil }
            guard case .failure(let e)? = r else { Issue.record("expected failure, got \(String(describing: r))"); return }
            #expect("\(e)".contains("connect"))
            #expect(!pool.isHealthy)
            // Later calls fail at once instead of queueing behind a dead database.
            var r2: Result<PGResult, PGError>?
            pool.query("SELECT 1") { r2 = $0 }
            if case .failure(.unavailable)? = r2 {} else { Issue.record("expected .unavailable at once, got \(String(describing: r2))") }
        }

        @Test(.enabled(if: TestCluster.isEmbedded, "needs the embedded cluster to stop it"))
        func serverStopFailsInFlightAndReconnects() throws {
            let f = try Fixture(size: 2)
            let pg = try #require(f.cluster.embedded)
            let owner = uniqueOwner()
            let t = try #require(try f.wait { f.store.beginTurn(owner: owner, conversationID: nil, system: nil, userText: "durable", model: nil, provider: nil, completion: $0) }?.get())

            var inflight: [Result<PGResult, PGError>?] = [nil, nil]
            for i in 0..<2 { f.pool.query("SELECT pg_sleep(10)") { inflight[i] = $0 } }
            for _ in 0..<5 { f.loop.tick(block: false) }  // let the queries reach the server
            let t0 = Date()
            try pg.stop(mode: .immediate)
            drive(f.loop, seconds: 10, "in-flight queries after stop", dump: { f.pool.debugDescription }) { inflight.allSatisfy { $0 != nil } }
            for r in inflight {
                guard case .failure(let e)? = r else { Issue.record("in-flight query did not fail: \(String(describing: r))"); continue }
                print("[StorageTests] in-flight query failed with: \(e)")
            }
            #expect(f.waitHealthy(false, seconds: 10))
            var refused: Result<PGResult, PGError>?
            f.pool.query("SELECT 1") { refused = $0 }
            if case .failure? = refused {} else { Issue.record("query while down was not refused at once") }

            _ = try pg.start()
            #expect(f.waitHealthy(true, seconds: 20))
            print("[StorageTests] down → healthy again in \(String(format: "%.2f", Date().timeIntervalSince(t0))) s")
            // The turn's first commit did not wait for its flush; finalizing after the crash keeps
            // the turn whole either way (the rows survived, or they are written again).
            #expect(f.pool.connectionLosses != t.lossMark)
            let stored = try f.wait { f.store.finalizeAssistantMessage(owner: owner, id: t.assistantMessageID, text: "after", status: .complete, finishReason: "stop", usage: nil, ttftMs: nil, latencyMs: nil, error: nil, turn: t, completion: $0) }?.get()
            #expect(stored == true)
            let d = try f.wait { f.store.getConversation(owner: owner, id: t.conversation.id, completion: $0) }?.get() ?? nil
            #expect(d?.messages.map(\.content) == ["durable", "after"])
            #expect(f.sql("SELECT 1") != nil)
        }

        @Test(.enabled(if: TestCluster.isEmbedded, "needs the embedded cluster to restart it"))
        func embeddedRestartReusesData() throws {
            let c = try TestCluster.get()
            let pg = try #require(c.embedded)
            let t0 = Date()
            let conninfo = try pg.start()  // already running: reused, not re-initialised
            #expect(conninfo == c.conninfo)
            #expect(Date().timeIntervalSince(t0) < 5)
            #expect(try EmbeddedPostgres.findBinaries().hasSuffix("/bin"))
        }

        /// A finished batch's completion runs before its connection is handed the next waiter,
        /// and work a completion submits queues behind the waiters already there.
        @Test func completionRunsBeforeTheNextBatchIsDispatched() throws {
            let f = try Fixture(size: 1)
            var events: [String] = []
            f.pool.onWaitForConnection = { _ in events.append("dispatch") }
            var done = false
            f.pool.query("SELECT 1") { _ in
                events.append("A done")
                f.pool.query("SELECT 3") { _ in events.append("C done"); done = true }
            }
            f.pool.query("SELECT 2") { _ in events.append("B done") }
            drive(f.loop, "three queries", dump: { f.pool.debugDescription }) { done }
            #expect(events == ["dispatch", "A done", "dispatch", "B done", "dispatch", "C done"])
        }

        /// The connection reports itself idle only after the finished batch's completion ran.
        @Test func connectionReportsIdleAfterTheCompletion() throws {
            let cluster = try TestCluster.get()
            let loop = try EventLoop()
            let c = PGConnection(loop: loop, configuration: PGConfiguration(conninfo: cluster.conninfo))
            defer { c.close() }
            var events: [String] = []
            c.onStateChange = { events.append("\($0)") }
            c.connect()
            drive(loop, "connect", dump: { events.joined(separator: ",") }) { c.state == .idle }
            events.removeAll()
            var done = false
            c.execute(PGQuery("SELECT 1")) { _ in events.append("completion(state=\(c.state))"); done = true }
            drive(loop, "query", dump: { events.joined(separator: ",") }) { done && events.last == "idle" }
            #expect(events == ["busy", "completion(state=idle)", "idle"])
        }
    }
}
