import Foundation
import Reactor
import Storage
import Testing

extension StorageTests {
    @Suite struct RunAndHistoryTests {
        @Test func aLongConversationSendsOnlyItsBudgetAndStartsAtAUserMessage() throws {
            let f = try Fixture()
            let owner = uniqueOwner()
            let first = try #require(try f.wait { f.store.beginTurn(owner: owner, conversationID: nil, system: nil, userText: "m0", model: "m", provider: "mock", completion: $0) }?.get())
            let conv = first.conversation.id
            // 5,000 messages, written in one statement (after the first turn's two).
            let r = f.sql("""
                INSERT INTO messages (id, conversation_id, role, content, status, created_at)
                SELECT gen_random_uuid(), $1::uuid, CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END, 'message ' || i, 'complete',
                       clock_timestamp() + i * interval '1 millisecond'
                FROM generate_series(1, 4998) AS i
                """, [conv])
            #expect(r != nil)
            let budget = HistoryBudget(messages: 50, characters: 1_000_000)
            let started = Date()
            let t = try #require(try f.wait { f.store.beginTurn(owner: owner, conversationID: conv, system: nil, userText: "next", model: "m", provider: "mock", history: budget, completion: $0) }?.get())
            let elapsed = Date().timeIntervalSince(started)
            // 50 stored messages plus the new one, newest of them all, oldest first.
            #expect(t.history.count == 51)
            #expect(t.history.first?.content == "message 4949" && t.history.dropLast().last?.content == "message 4998")
            #expect(t.history.last?.content == "next")
            #expect(elapsed < 2, "loading a 50-message budget of 5,000 took \(elapsed) s")
            // A character budget cuts earlier: each "message 49xx" is 12 characters.
            let small = HistoryBudget(messages: 1_000, characters: 12 * 10)
            let t2 = try #require(try f.wait { f.store.beginTurn(owner: owner, conversationID: conv, system: nil, userText: "again", model: "m", provider: "mock", history: small, completion: $0) }?.get())
            let kept = t2.history.dropLast()
            #expect(kept.reduce(0) { $0 + $1.content.count } <= 120 && kept.count >= 10, "\(t2.history.map(\.content))")
            #expect(kept.last?.content == "next" || kept.last?.content == "")
        }

        @Test func onlyTheFirstRunToCompleteIsSelectedAndTheHistoryFollowsTheSelection() throws {
            let f = try Fixture()
            let owner = uniqueOwner()
            let runs = ["a", "b", "c"].map { RunOpening(model: "model-\($0)", provider: "mock", deployment: "d-\($0)", upstreamModel: "up-\($0)") }
            let start = try #require(try f.wait { f.store.beginMultiTurn(owner: owner, conversationID: nil, system: nil, userText: "question", runs: runs, mode: .all, completion: $0) }?.get())
            #expect(start.runs.count == 3 && Set(start.runs.map(\.assistantMessageID)).count == 3)
            // The three finish at once, each on its own connection: exactly one is selected.
            var finals: [String: RunFinal] = [:]
            for (i, run) in start.runs.enumerated() {
                f.store.finalizeRun(owner: owner, id: run.assistantMessageID, text: "answer \(i)", status: .complete, finishReason: "stop",
                                    usage: nil, ttftMs: 1, latencyMs: 2, error: nil, model: nil, deployment: nil, upstreamModel: nil,
                                    attempts: nil, costUSD: "0.000001") { r in finals[run.assistantMessageID] = try? r.get() }
            }
            _ = f.wait("three finals") { (done: @escaping (Bool) -> Void) in
                func poll() { if finals.count == 3 { done(true) } else { f.loop.schedule(afterMillis: 5) { poll() } } }
                poll()
            }
            #expect(finals.values.allSatisfy { $0.stored })
            #expect(finals.values.filter(\.selected).count == 1, "\(finals)")
            let selected = try #require(finals.first { $0.value.selected }?.key)
            let next = try #require(try f.wait { f.store.beginTurn(owner: owner, conversationID: start.runs[0].conversation.id, system: nil, userText: "more", model: "m", provider: "mock", completion: $0) }?.get())
            let chosen = try #require(start.runs.firstIndex { $0.assistantMessageID == selected })
            #expect(next.history.map(\.content) == ["question", "answer \(chosen)", "more"])
            // Selecting another run changes what the next turn sees.
            let other = start.runs[(chosen + 1) % 3].assistantMessageID
            let turn = try f.wait { f.store.selectRun(owner: owner, conversationID: start.runs[0].conversation.id, runID: other, completion: $0) }?.get()
            #expect(turn == start.turnID)
            let stranger = try f.wait { f.store.selectRun(owner: uniqueOwner(), conversationID: start.runs[0].conversation.id, runID: other, completion: $0) }?.get()
            #expect(stranger == .some(nil))
            let detail = try #require(try f.wait { f.store.getConversation(owner: owner, id: start.runs[0].conversation.id, completion: $0) }?.get() ?? nil)
            let runInfo = detail.messages.compactMap(\.run)
            #expect(runInfo.count == 3 && runInfo.filter(\.selected).count == 1 && runInfo.allSatisfy { $0.status == .complete })
            #expect(detail.messages.first { $0.id == other }?.run?.selected == true)
        }

        @Test func textArraysParseAsPostgreSQLPrintsThem() throws {
            let f = try Fixture()
            let items = ["plain", "", "with space", "comma,inside", "quote\"s", "back\\slash", "{braces}", "NULL", "ünïcødé 🎉", "line\nbreak"]
            let r = f.sql("SELECT $1::text[]::text AS a", [PGArray.literal(items)])
            let printed = try #require(r?.rows.first?.first ?? nil)
            #expect(PGArray.parseText(printed) == items, "\(printed)")
            #expect(PGArray.parseText("{}") == [])
            for bad in ["", "{", "{a,}", "{\"a}", "{NULL}", "a,b"] { #expect(PGArray.parseText(bad) == nil, "\(bad)") }
        }
    }
}

extension StorageTests {
    @Suite struct CacheStoreTests {
        @Test func entriesExpireAndTheOldestGoBeyondTheSizeCap() throws {
            let f = try Fixture()
            let cache = CacheStore(pool: f.pool)
            _ = f.sql("DELETE FROM response_cache")
            func key(_ i: UInt8) -> [UInt8] { [UInt8](repeating: i, count: 32) }
            let answer = CachedAnswer(pieces: ["Hello", " there"], finishReason: "stop", usage: TokenUsage(promptTokens: 3, completionTokens: 2))
            for i in 1...5 as ClosedRange<UInt8> {
                let r = f.wait { cache.store(key: key(i), model: "m", answer: answer, ttlSeconds: 60, completion: $0) }
                #expect((try? r?.get()) != nil)
            }
            let hit = try #require(try f.wait { cache.lookup(key: key(3), completion: $0) }?.get())
            #expect(hit.pieces == ["Hello", " there"] && hit.finishReason == "stop" && hit.usage?.completionTokens == 2)
            #expect(hit.remainingMillis > 55_000 && hit.remainingMillis <= 60_000)
            // An expired entry is no hit, and eviction drops it; a cap of three entries' bytes keeps the newest three.
            _ = f.sql("UPDATE response_cache SET expires_at = now() - interval '1 second' WHERE get_byte(key, 0) = 5")
            #expect(try f.wait { cache.lookup(key: key(5), completion: $0) }?.get() == .some(nil))
            _ = f.sql("UPDATE response_cache SET created_at = now() - (6 - get_byte(key, 0)) * interval '1 minute'")
            let evicted = try f.wait { cache.evict(maxBytes: 3 * answer.sizeBytes, completion: $0) }?.get()
            #expect(evicted == 2, "the expired entry and the oldest of the other four")
            let left = f.sql("SELECT get_byte(key, 0) AS k FROM response_cache ORDER BY 1")?.rows.compactMap { $0.first ?? nil }
            #expect(left == ["2", "3", "4"])
        }
    }
}
