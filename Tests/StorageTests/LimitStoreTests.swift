import Foundation
import Reactor
import Storage
import Testing

extension StorageTests {
    /// The shared counters, keys and ledger against a real PostgreSQL.
    @Suite struct LimitStoreTests {
        @Test func claimsNeverGrantMoreThanTheLimitAcrossPools() throws {
            let f = try Fixture()
            let other = PGPool(loop: f.loop, configuration: f.pool.configuration, size: 2)
            other.start()
            defer { other.close() }
            let subject = "k:\(UUID().uuidString):rpm"
            let a = LimitStore(pool: f.pool, writer: "a"), b = LimitStore(pool: other, writer: "b")
            // Two "instances" claim 7 at a time, 10 times each, against a limit of 60.
            var granted: Int64 = 0
            var answers = 0
            for i in 0..<20 {
                let store = i % 2 == 0 ? a : b
                store.windows([WindowOp(subject: subject, kind: .claim, amount: 7, limit: 60, windowMs: 60_000)]) { r in
                    granted += (try? r.get().first?.granted) ?? 0
                    answers += 1
                }
            }
            drive(f.loop, "claims", dump: { f.pool.debugDescription }) { answers == 20 }
            #expect(granted == 60)
            let read = try #require(try f.wait { a.windows([WindowOp(subject: subject, kind: .read, amount: 0, limit: 0, windowMs: 60_000)], completion: $0) }?.get().first)
            #expect(read.used == 60 && read.resetMs > 50_000 && read.resetMs <= 60_000)
        }

        @Test func releaseGivesBackOnlyWithinTheSameWindow() throws {
            let f = try Fixture()
            let s = LimitStore(pool: f.pool, writer: "a")
            let subject = "k:\(UUID().uuidString):rpm"
            let c = try #require(try f.wait { s.windows([WindowOp(subject: subject, kind: .claim, amount: 5, limit: 10, windowMs: 300)], completion: $0) }?.get().first)
            #expect(c.granted == 5)
            let r = try #require(try f.wait { s.windows([WindowOp(subject: subject, kind: .release, amount: 2, limit: 10, windowMs: 300, windowID: c.windowID)], completion: $0) }?.get().first)
            #expect(r.granted == 2 && r.used == 3)
            Thread.sleep(forTimeInterval: 0.35)
            // A new window has begun: a release for the old one changes nothing, and everything is free again.
            let late = try #require(try f.wait { s.windows([WindowOp(subject: subject, kind: .release, amount: 3, limit: 10, windowMs: 300, windowID: c.windowID)], completion: $0) }?.get().first)
            #expect(late.granted == 0 && late.used == 0 && late.windowID != c.windowID)
        }

        @Test func chargesAddWithoutLimitAndCalendarWindowsResetAtMidnightUTC() throws {
            let f = try Fixture()
            let s = LimitStore(pool: f.pool, writer: "a")
            let subject = "k:\(UUID().uuidString):usd"
            let one = try #require(try f.wait { s.windows([WindowOp(subject: subject, kind: .charge, amount: 1_500, limit: 0, windowMs: -1)], completion: $0) }?.get().first)
            let two = try #require(try f.wait { s.windows([WindowOp(subject: subject, kind: .charge, amount: 2_500, limit: 0, windowMs: -1)], completion: $0) }?.get().first)
            #expect(one.used == 1_500 && two.used == 4_000)
            #expect(two.resetMs > 0 && two.resetMs <= 86_400_000)
            let start = f.sql("SELECT window_start = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS ok FROM limit_windows WHERE subject = $1", [subject])
            #expect(start?.value(0, "ok") == "t")
        }

        @Test func streamSlotsHoldAcrossWritersAndDeadWritersAreDropped() throws {
            let f = try Fixture()
            let subject = "k:\(UUID().uuidString):streams"
            // Writer "me" is this pool's own application_name suffix, so it counts as alive.
            let live = PGPool(loop: f.loop, configuration: PGConfiguration(conninfo: f.cluster.conninfo, applicationName: ChatStore.writerApplicationName("live")), size: 1)
            live.start()
            defer { live.close() }
            let me = LimitStore(pool: live, writer: "live")
            let ghost = LimitStore(pool: f.pool, writer: "ghost-\(UUID().uuidString)")
            let g1 = try #require(try f.wait { ghost.slots([(subject, 2, 3)], completion: $0) }?.get().first)
            #expect(g1.granted == 2)
            // The ghost has no session named after it: its slots are dropped when the live writer claims.
            let g2 = try #require(try f.wait { me.slots([(subject, 3, 3)], completion: $0) }?.get().first)
            #expect(g2.granted == 3 && g2.held == 3)
            let g3 = try #require(try f.wait { me.slots([(subject, 1, 3)], completion: $0) }?.get().first)
            #expect(g3.granted == 0)
            let back = try #require(try f.wait { me.slots([(subject, -2, 3)], completion: $0) }?.get().first)
            #expect(back.granted == -2 && back.held == 1)
        }

        @Test func keysCreateRotateRevokeAndTheChangeFeed() throws {
            let f = try Fixture()
            let keys = KeyStore(pool: f.pool)
            let before = f.sql("SELECT coalesce(max(version), 0) AS v FROM api_keys")?.value(0, "v").flatMap { Int64($0) } ?? 0
            let name = "k-\(UUID().uuidString.prefix(8))"
            let limits = KeyLimits(rpm: 60, tpm: 1000, maxStreams: 2, budgetUSD: "12.50", budgetPeriod: .month, models: ["mock-echo", "openai/*"])
            let k = try #require(try f.wait { keys.create(name: name, keyHash: String(repeating: "a", count: 63) + "1", prefix: "cr_abc", limits: limits, completion: $0) }?.get())
            #expect(k.limits == KeyLimits(rpm: 60, tpm: 1000, maxStreams: 2, budgetUSD: "12.50", budgetPeriod: .month, models: ["mock-echo", "openai/*"]))
            let rotated = try #require(try f.wait { keys.rotate(id: k.id, keyHash: String(repeating: "b", count: 64), prefix: "cr_def", completion: $0) }?.get() ?? nil)
            #expect(rotated.keyHash == String(repeating: "b", count: 64) && rotated.version > k.version && rotated.rotatedAt != nil)
            let revoked = try #require(try f.wait { keys.revoke(id: k.id, completion: $0) }?.get() ?? nil)
            #expect(revoked.isRevoked && revoked.version > rotated.version)
            #expect(try f.wait { keys.rotate(id: k.id, keyHash: "c", prefix: "x", completion: $0) }?.get() == .some(nil))
            let changes = try #require(try f.wait { keys.changes(since: before, completion: $0) }?.get())
            #expect(changes.last?.id == k.id && changes.last?.isRevoked == true)
            let byName = try f.wait { keys.find(name, completion: $0) }?.get() ?? nil
            #expect(byName == nil)  // a revoked key is not found by name
            // A budget without a period is refused by the database itself.
            let bad = try #require(f.wait { keys.create(name: "x", keyHash: UUID().uuidString, prefix: "p", limits: KeyLimits(budgetUSD: "1"), completion: $0) })
            if case .success = bad { Issue.record("a budget without a period was stored") }
        }

        @Test func ledgerSumsExactCosts() throws {
            let f = try Fixture()
            let usage = UsageStore(pool: f.pool)
            let owner = uniqueOwner()
            var row = UsageIncrement(owner: owner, day: 20_424, model: "m", deployment: "d")
            row.requests = 1
            row.promptTokens = 7
            row.completionTokens = 5
            row.costPico = 7 * 150_000 + 5 * 600_000  // $0.15 and $0.60 per million tokens
            row.estimatedRequests = 1
            for _ in 0..<3 { _ = try f.wait { usage.add([row], completion: $0) }?.get() }
            let totals = try #require(try f.wait { usage.totals(owner: owner, from: "2025-01-01", to: "2026-12-31", completion: $0) }?.get())
            #expect(totals.count == 1)
            #expect(totals.first?.day == "2025-12-02" && totals.first?.requests == 3 && totals.first?.completionTokens == 15)
            #expect(totals.first.map { Decimal(string: $0.costUSD) } == Decimal(string: "0.00001215"))
        }
    }
}
