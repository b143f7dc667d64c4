import Foundation
import Reactor
import Storage
import Testing
@testable import ChatAPI

// Inside ChatAPIEndToEnd: its suites run one at a time, and some stop the shared database.
extension ChatAPIEndToEnd {
    /// The limit windows of two "workers" (two pools on one loop) against a real PostgreSQL: what they
    /// admit together never passes the limit, claims are made ahead so a busy key waits for nothing,
    /// units left idle go back, and a charge made by one is seen by the other.
    @Suite(.serialized) final class SharedWindowsTests {
        final class Worker {
            let pool: PGPool
            let windows: SharedWindows
            let slots: StreamSlots

            init(_ loop: EventLoop, _ conninfo: String, writer: String) {
                pool = PGPool(loop: loop, configuration: PGConfiguration(conninfo: conninfo, applicationName: ChatStore.writerApplicationName(writer)), size: 1)
                pool.start()
                let store = LimitStore(pool: pool, writer: writer)
                windows = SharedWindows(loop: loop, store: store, syncMillis: 50)
                slots = StreamSlots(loop: loop, store: store)
            }
        }

        let loop: EventLoop
        let a: Worker
        let b: Worker

        init() throws {
            let db = try ChatTestDatabase.get()
            loop = try EventLoop()
            a = Worker(loop, db.conninfo, writer: "wa-\(UUID().uuidString)")
            b = Worker(loop, db.conninfo, writer: "wb-\(UUID().uuidString)")
            // Migrations (the functions) are applied by whichever server test started first; apply here too.
            var done = false
            Migrations.apply(pool: a.pool) { _ in done = true }
            run(until: { done })
        }

        deinit {
            a.windows.stop()
            b.windows.stop()
            a.pool.close()
            b.pool.close()
        }

        func run(seconds: Double = 10, until: () -> Bool) {
            let deadline = Date().addingTimeInterval(seconds)
            while !until() && Date() < deadline { loop.tick(block: false); usleep(500) }
        }

        func take(_ w: Worker, _ subject: String, limit: Int64) -> Grant? {
            var out: Grant?
            w.windows.take(w.windows.window(subject, .claim, limit: limit, windowMs: 60_000)) { out = $0 }
            run { out != nil }
            return out
        }

        @Test func twoWorkersNeverAdmitMoreThanTheLimit() {
            let subject = "k:\(UUID().uuidString):rpm"
            var granted = 0
            for i in 0..<40 where take(i % 2 == 0 ? a : b, subject, limit: 25) == .granted { granted += 1 }
            #expect(granted == 25)
            // Refused from now on without asking the database again (the window is known full).
            let before = a.windows.statements
            #expect(take(a, subject, limit: 25) == .refused)
            #expect(a.windows.statements == before)
        }

        @Test func aBusyKeyClaimsAheadAndDoesNotWaitForTheDatabase() {
            let subject = "k:\(UUID().uuidString):rpm"
            // A large limit: units are claimed ahead, in batches (limit / 64).
            #expect(take(a, subject, limit: 64_000) == .granted)
            var waited = 0
            for _ in 0..<500 {
                // Requests arrive spread out (here 50 µs apart) while the loop serves its sockets.
                usleep(50)
                loop.tick(block: false)
                var out: Grant?
                a.windows.take(a.windows.window(subject, .claim, limit: 64_000, windowMs: 60_000)) { out = $0 }
                if out == nil { waited += 1; run { out != nil } }
            }
            #expect(waited == 0)
            // 501 requests, a few claims of 256 units: one statement per batch, not per request.
            #expect(a.windows.statements <= 4)
        }

        @Test func idleUnitsGoBackToTheDatabase() {
            let subject = "k:\(UUID().uuidString):rpm"
            #expect(take(a, subject, limit: 12_800) == .granted)  // batch of 200 claimed
            // After a second idle the sync gives the unused units back: b sees nearly all of the limit.
            var reading: Int64 = 0
            let deadline = Date().addingTimeInterval(4)
            while Date() < deadline {
                var state: WindowState?
                LimitStore(pool: b.pool, writer: "x").windows([WindowOp(subject: subject, kind: .read, amount: 0, limit: 0, windowMs: 60_000)]) {
                    state = try? $0.get().first
                }
                run { state != nil }
                reading = state?.used ?? -1
                if reading == 1 { break }
                run(seconds: 0.2) { false }
            }
            #expect(reading == 1)
        }

        @Test func aChargeByOneWorkerIsSeenByTheOther() {
            let subject = "k:\(UUID().uuidString):tpm"
            var first: Grant?
            let bw = b.windows.window(subject, .tally, limit: 100, windowMs: 60_000)
            b.windows.check(bw) { first = $0 }
            run { first != nil }
            #expect(first == .granted)
            a.windows.charge(a.windows.window(subject, .tally, limit: 100, windowMs: 60_000), amount: 150)
            // Using the window up is sent at once; b re-reads within two sync intervals.
            var refused = false
            let deadline = Date().addingTimeInterval(3)
            while !refused && Date() < deadline {
                var g: Grant?
                b.windows.check(bw) { g = $0 }
                run { g != nil }
                refused = g == .refused
                if !refused { run(seconds: 0.05) { false } }
            }
            #expect(refused)
        }

        @Test func streamSlotsAreSharedAndReturned() {
            let subject = "k:\(UUID().uuidString):streams"
            func acquire(_ w: Worker) -> Grant? {
                var out: Grant?
                w.slots.acquire(subject, limit: 2) { out = $0 }
                run { out != nil }
                return out
            }
            #expect(acquire(a) == .granted)
            #expect(acquire(b) == .granted)
            #expect(acquire(b) == .refused)
            a.slots.release(subject)
            // a keeps the freed slot half a second for its own next stream, then gives it back.
            run(seconds: 0.2) { false }
            #expect(acquire(a) == .granted)
            a.slots.release(subject)
            var later: Grant?
            let deadline = Date().addingTimeInterval(3)
            repeat {
                run(seconds: 0.1) { false }
                later = acquire(b)
            } while later != .granted && Date() < deadline
            #expect(later == .granted)
        }
    }
}
