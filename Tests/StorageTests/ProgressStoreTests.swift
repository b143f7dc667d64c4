import Foundation
import Reactor
import Storage
import Testing

extension StorageTests {
    /// Progress of answers in progress against a real PostgreSQL: appended in batches, replaced
    /// after a restart, never over a final answer, announced on the channel, and swept to
    /// `interrupted` when the writing instance is gone.
    @Suite struct ProgressStoreTests {
        func openTurn(_ f: Fixture, owner: String, writer: String) throws -> TurnStart {
            let store = ChatStore(pool: f.pool, writer: writer)
            return try #require(try f.wait { store.beginTurn(owner: owner, conversationID: nil, system: nil, userText: "hi", model: "m",
                                                            provider: "mock", completion: $0) }?.get())
        }

        @Test func deltasAppendReplaceAndAreAnnounced() throws {
            let f = try Fixture()
            let owner = uniqueOwner()
            // This pool's own session carries the writer's name, so its answers are not swept.
            let writer = "live-\(UUID().uuidString)"
            let a = try openTurn(f, owner: owner, writer: writer).assistantMessageID
            let b = try openTurn(f, owner: owner, writer: writer).assistantMessageID
            let listener = PGConnection(loop: f.loop, configuration: f.pool.configuration)
            var heard: [String] = []
            var listening = false
            listener.onNotification = { channel, payload in
                if channel == ProgressStore.channel { heard += payload.split(separator: ",").map(String.init) }
            }
            listener.onStateChange = { state in
                if state == .idle && !listening {
                    listening = true
                    listener.execute(PGQuery("LISTEN \(ProgressStore.channel)")) { _ in }
                }
            }
            listener.connect()
            defer { listener.close() }
            drive(f.loop, "listen", dump: { f.pool.debugDescription }) { listening && listener.state == .idle }

            let store = ProgressStore(pool: f.pool)
            _ = try f.wait { store.write(writer: writer, worker: 0, seq: 1, [ProgressDelta(id: a, text: "Hel", replace: false),
                                                                             ProgressDelta(id: b, text: "x", replace: false)],
                                         ended: [], pruneBelow: nil, completion: $0) }?.get()
            _ = try f.wait { store.write(writer: writer, worker: 0, seq: 2, [ProgressDelta(id: a, text: "lo ✓", replace: false),
                                                                             ProgressDelta(id: b, text: "new", replace: true)],
                                         ended: ["00000000-0000-4000-8000-000000000001"], pruneBelow: nil, completion: $0) }?.get()
            // One row per write, whatever the number of answers in it.
            #expect(f.sql("SELECT count(*) AS n FROM answer_progress WHERE writer = $1", [writer])?.value(0, "n") == "2")
            let both = try #require(try f.wait { store.answers([a, b], completion: $0) }?.get())
            #expect(both.first { $0.id == a }?.content == "Hello ✓")
            #expect(both.first { $0.id == b }?.content == "new")
            #expect(both.allSatisfy { $0.status == .streaming })
            drive(f.loop, "notifications", dump: { "\(heard)" }) { heard.count >= 5 }
            #expect(heard.filter { $0 == a }.count == 2 && heard.contains("00000000-0000-4000-8000-000000000001"))

            // A final answer is never overwritten by a late progress write.
            _ = try f.wait { f.store.finalizeAssistantMessage(owner: owner, id: a, text: "Hello ✓ done", status: .complete, finishReason: "stop",
                                                              usage: nil, ttftMs: 1, latencyMs: 2, error: nil, completion: $0) }?.get()
            _ = try f.wait { store.write(writer: writer, worker: 0, seq: 3, [ProgressDelta(id: a, text: "late", replace: false)], ended: [],
                                         pruneBelow: nil, completion: $0) }?.get()
            let final = try #require(try f.wait { store.answer(owner: owner, id: a, completion: $0) }?.get() ?? nil)
            #expect(final.content == "Hello ✓ done" && final.status == .complete && final.latencyMs == 2)
            // Owner-scoped.
            #expect(try f.wait { store.answer(owner: uniqueOwner(), id: a, completion: $0) }?.get() == .some(nil))
            // Pruning deletes this worker's rows before a row number.
            _ = try f.wait { store.write(writer: writer, worker: 0, seq: 4, [], ended: [], pruneBelow: 3, completion: $0) }?.get()
            #expect(f.sql("SELECT min(seq) AS s FROM answer_progress WHERE writer = $1", [writer])?.value(0, "s") == "3")
        }

        @Test func answersOfAGoneWriterAreInterrupted() throws {
            let f = try Fixture()
            let owner = uniqueOwner()
            // Stamped with a writer that has no session: as if its instance was killed.
            let ghostWriter = "ghost-\(UUID().uuidString)"
            let id = try openTurn(f, owner: owner, writer: ghostWriter).assistantMessageID
            let store = ProgressStore(pool: f.pool)
            _ = try f.wait { store.write(writer: ghostWriter, worker: 1, seq: 7, [ProgressDelta(id: id, text: "half an answ", replace: false)],
                                         ended: [], pruneBelow: nil, completion: $0) }?.get()
            #expect(try f.wait { store.markInterrupted([id], completion: $0) }?.get() == [id])
            let swept = try f.wait { store.answer(owner: owner, id: id, completion: $0) }?.get() ?? nil
            #expect(swept?.status == .interrupted && swept?.content == "half an answ")
            #expect(try f.wait { store.markInterrupted([id], completion: $0) }?.get() == [])
        }
    }
}
