import Foundation
import Reactor
import Storage
import Testing

extension StorageTests {
    @Suite struct ChatStoreTests {
        @Test func migrationsAreIdempotentAndConcurrent() throws {
            let f = try Fixture()
            let other = PGPool(loop: f.loop, configuration: f.pool.configuration, size: 1)
            other.start()
            defer { other.close() }
            // Two "instances" migrating at once queue on the advisory lock; both see the latest version.
            let latest = Migrations.all.map(\.version).max()
            var a: Result<Int, StoreError>?
            var b: Result<Int, StoreError>?
            Migrations.apply(pool: f.pool) { a = $0 }
            Migrations.apply(pool: other) { b = $0 }
            drive(f.loop, "two migrations", dump: { f.pool.debugDescription }) { a != nil && b != nil }
            #expect(try a?.get() == latest && latest == 10)
            #expect(try b?.get() == latest)
            let rows = f.sql("SELECT count(*) FROM schema_migrations")
            #expect(rows?.rows.first?.first ?? nil == "10")
        }

        @Test func singleCallsRoundTrip() throws {
            let f = try Fixture()
            let owner = uniqueOwner()
            let conv = try #require(try f.wait { f.store.createConversation(owner: owner, title: "T", system: "Be terse.", model: "mock-echo", completion: $0) }?.get())
            #expect(conv.title == "T" && conv.systemPrompt == "Be terse." && conv.model == "mock-echo")
            #expect(conv.createdAt.hasSuffix("Z") && conv.createdAt.count == 24)

            let userID = try #require(try f.wait { f.store.appendUserMessage(owner: owner, conversationID: conv.id, text: "Hello", completion: $0) }?.get())
            let asstID = try #require(try f.wait { f.store.openAssistantMessage(owner: owner, conversationID: conv.id, model: "mock-echo", provider: "mock", completion: $0) }?.get())
            let ok = try f.wait { f.store.finalizeAssistantMessage(owner: owner, id: asstID, text: "Hi!", status: .complete, finishReason: "stop", usage: TokenUsage(promptTokens: 3, completionTokens: 2, totalTokens: 5), ttftMs: 12, latencyMs: 40, error: nil, completion: $0) }?.get()
            #expect(ok == true)

            let detail = try #require(try f.wait { f.store.getConversation(owner: owner, id: conv.id, completion: $0) }?.get() ?? nil)
            #expect(detail.messages.map(\.id) == [userID, asstID])
            #expect(detail.messages[0].role == .user && detail.messages[0].content == "Hello")
            let a = detail.messages[1]
            #expect(a.role == .assistant && a.status == .complete && a.content == "Hi!" && a.finishReason == "stop")
            #expect(a.usage == TokenUsage(promptTokens: 3, completionTokens: 2, totalTokens: 5))
            #expect(a.ttftMs == 12 && a.latencyMs == 40 && a.model == "mock-echo" && a.provider == "mock")
            let n = try f.wait { f.store.messageCount(owner: owner, conversationID: conv.id, completion: $0) }?.get()
            #expect(n == 2)
        }

        @Test func beginTurnIsOneRoundTripAndKeepsOrder() throws {
            let f = try Fixture()
            let owner = uniqueOwner()
            let t1 = try #require(try f.wait { f.store.beginTurn(owner: owner, conversationID: nil, system: "sys", userText: "first question", model: "m1", provider: "mock", completion: $0) }?.get())
            #expect(t1.isNewConversation && t1.conversation.title == "first question" && t1.conversation.systemPrompt == "sys")
            #expect(t1.history.map(\.id) == [t1.userMessageID])
            _ = try f.wait { f.store.finalizeAssistantMessage(owner: owner, id: t1.assistantMessageID, text: "answer 1", status: .complete, finishReason: "stop", usage: nil, ttftMs: nil, latencyMs: nil, error: nil, completion: $0) }?.get()

            let t2 = try #require(try f.wait { f.store.beginTurn(owner: owner, conversationID: t1.conversation.id, system: nil, userText: "second", model: "m2", provider: "mock", completion: $0) }?.get())
            #expect(!t2.isNewConversation && t2.conversation.id == t1.conversation.id && t2.conversation.model == "m2")
            #expect(t2.history.map(\.content) == ["first question", "answer 1", "second"])
            #expect(t2.history.map(\.role) == [.user, .assistant, .user])

            // Another owner cannot continue it, and nothing is written.
            let stranger = f.wait { f.store.beginTurn(owner: uniqueOwner(), conversationID: t1.conversation.id, system: nil, userText: "intrude", model: nil, provider: nil, completion: $0) }
            #expect(isStoreError(stranger, .notFound))
            let n = try f.wait { f.store.messageCount(owner: owner, conversationID: t1.conversation.id, completion: $0) }?.get()
            #expect(n == 4)  // 2 turns × (user + assistant)
        }

        @Test func paginationAcrossPages() throws {
            let f = try Fixture()
            let owner = uniqueOwner()
            var created: [String] = []
            for i in 0..<7 {
                let c = try #require(try f.wait { f.store.createConversation(owner: owner, title: "c\(i)", system: nil, model: nil, completion: $0) }?.get())
                created.append(c.id)
            }
            var seen: [String] = []
            var cursor: String? = nil
            var pages = 0
            repeat {
                let page = try #require(try f.wait { f.store.listConversations(owner: owner, limit: 3, cursor: cursor, completion: $0) }?.get())
                pages += 1
                seen += page.items.map(\.id)
                cursor = page.nextCursor
                #expect(page.items.count == (pages < 3 ? 3 : 1))
            } while cursor != nil && pages < 10
            #expect(pages == 3)
            #expect(seen == created.reversed())  // newest first, no duplicates, nothing missed

            let bad = f.wait { f.store.listConversations(owner: owner, limit: 3, cursor: "zz-not-a-cursor", completion: $0) }
            #expect(isStoreError(bad, .invalidCursor))
            let badLimit = try #require(f.wait { f.store.listConversations(owner: owner, limit: 0, cursor: nil, completion: $0) })
            if case .success = badLimit { Issue.record("limit 0 accepted") }
        }

        @Test func ownerIsolation() throws {
            let f = try Fixture()
            let owner = uniqueOwner(), other = uniqueOwner()
            let t = try #require(try f.wait { f.store.beginTurn(owner: owner, conversationID: nil, system: nil, userText: "mine", model: nil, provider: nil, completion: $0) }?.get())
            let id = t.conversation.id
            #expect(try f.wait { f.store.getConversation(owner: other, id: id, completion: $0) }?.get() == .some(nil))
            #expect(try f.wait { f.store.deleteConversation(owner: other, id: id, completion: $0) }?.get() == false)
            #expect(try f.wait { f.store.messageCount(owner: other, conversationID: id, completion: $0) }?.get() == .some(nil))
            #expect(try f.wait { f.store.finalizeAssistantMessage(owner: other, id: t.assistantMessageID, text: "x", status: .complete, finishReason: nil, usage: nil, ttftMs: nil, latencyMs: nil, error: nil, completion: $0) }?.get() == false)
            let append = try #require(f.wait { f.store.appendUserMessage(owner: other, conversationID: id, text: "x", completion: $0) })
            if case .success = append { Issue.record("another owner appended a message") }
            #expect(try f.wait { f.store.listConversations(owner: other, limit: 10, cursor: nil, completion: $0) }?.get().items.isEmpty == true)
            #expect(try f.wait { f.store.getConversation(owner: owner, id: "not-a-uuid", completion: $0) }?.get() == .some(nil))
            // The owner still sees it untouched.
            let mine = try f.wait { f.store.getConversation(owner: owner, id: id, completion: $0) }?.get() ?? nil
            #expect(mine?.messages.count == 2)
        }

        @Test func deleteCascadesToMessages() throws {
            let f = try Fixture()
            let owner = uniqueOwner()
            let t = try #require(try f.wait { f.store.beginTurn(owner: owner, conversationID: nil, system: nil, userText: "bye", model: nil, provider: nil, completion: $0) }?.get())
            #expect(try f.wait { f.store.deleteConversation(owner: owner, id: t.conversation.id, completion: $0) }?.get() == true)
            let left = f.sql("SELECT count(*) FROM messages WHERE conversation_id = $1::uuid", [t.conversation.id])
            #expect(left?.rows.first?.first ?? nil == "0")
            #expect(try f.wait { f.store.deleteConversation(owner: owner, id: t.conversation.id, completion: $0) }?.get() == false)
        }

        @Test func sweepLeavesAnswersOfLiveInstancesAlone() throws {
            let live = UUID().uuidString.lowercased()
            // A pool whose sessions carry the live instance's name, as a running worker's do.
            let f = try Fixture(configure: { $0.applicationName = ChatStore.writerApplicationName(live) })
            let owner = uniqueOwner()
            let liveStore = ChatStore(pool: f.pool, writer: live)
            let goneStore = ChatStore(pool: f.pool, writer: UUID().uuidString.lowercased())
            let streaming = try #require(try f.wait { liveStore.beginTurn(owner: owner, conversationID: nil, system: nil, userText: "still streaming", model: nil, provider: nil, completion: $0) }?.get())
            let orphan = try #require(try f.wait { goneStore.beginTurn(owner: owner, conversationID: nil, system: nil, userText: "crashed", model: nil, provider: nil, completion: $0) }?.get())
            // Another instance starting up now.
            #expect(try f.wait { f.store.sweepInterrupted(completion: $0) }?.get() ?? 0 >= 1)
            func status(_ t: TurnStart) throws -> MessageStatus? {
                let d = try f.wait { f.store.getConversation(owner: owner, id: t.conversation.id, completion: $0) }?.get() ?? nil
                return d?.messages.first { $0.id == t.assistantMessageID }?.status
            }
            #expect(try status(streaming) == .streaming)
            #expect(try status(orphan) == .interrupted)
        }

        @Test(.enabled(if: TestCluster.isEmbedded, "needs the embedded cluster to restart it"))
        func finalizeWritesBackATurnTheDatabaseLost() throws {
            let f = try Fixture(size: 2)
            let pg = try #require(f.cluster.embedded)
            let owner = uniqueOwner()
            let t = try #require(try f.wait { f.store.beginTurn(owner: owner, conversationID: nil, system: "sys", userText: "lost question", model: "m1", provider: "mock", completion: $0) }?.get())
            // What a crash before the WAL flush leaves: a restarted server without the turn's rows.
            try pg.stop(mode: .immediate)
            #expect(f.waitHealthy(false, seconds: 10))
            _ = try pg.start()
            #expect(f.waitHealthy(true, seconds: 20))
            _ = f.sql("DELETE FROM conversations WHERE id = $1::uuid", [t.conversation.id])
            #expect(f.pool.connectionLosses != t.lossMark)
            let stored = try f.wait { f.store.finalizeAssistantMessage(owner: owner, id: t.assistantMessageID, text: "kept answer", status: .complete, finishReason: "stop", usage: TokenUsage(promptTokens: 1, completionTokens: 2, totalTokens: 3), ttftMs: 5, latencyMs: 9, error: nil, turn: t, completion: $0) }?.get()
            #expect(stored == true)
            let d = try #require(try f.wait { f.store.getConversation(owner: owner, id: t.conversation.id, completion: $0) }?.get() ?? nil)
            #expect(d.conversation.title == "lost question" && d.conversation.systemPrompt == "sys")
            #expect(d.messages.map(\.content) == ["lost question", "kept answer"])
            #expect(d.messages.map(\.role) == [.user, .assistant])
            let a = d.messages[1]
            #expect(a.status == .complete && a.model == "m1" && a.provider == "mock" && a.usage?.totalTokens == 3 && a.latencyMs == 9)
        }

        @Test func finalizeDoesNotBringBackAConversationTheUserDeleted() throws {
            let f = try Fixture()
            let owner = uniqueOwner()
            let t = try #require(try f.wait { f.store.beginTurn(owner: owner, conversationID: nil, system: nil, userText: "forget me", model: nil, provider: nil, completion: $0) }?.get())
            #expect(try f.wait { f.store.deleteConversation(owner: owner, id: t.conversation.id, completion: $0) }?.get() == true)
            let stored = try f.wait { f.store.finalizeAssistantMessage(owner: owner, id: t.assistantMessageID, text: "late answer", status: .complete, finishReason: "stop", usage: nil, ttftMs: nil, latencyMs: nil, error: nil, turn: t, completion: $0) }?.get()
            #expect(stored == false)
            #expect(try f.wait { f.store.getConversation(owner: owner, id: t.conversation.id, completion: $0) }?.get() ?? nil == nil)
        }

        @Test func startUpSweepMarksStreamingAsInterrupted() throws {
            let f = try Fixture()
            let owner = uniqueOwner()
            let t = try #require(try f.wait { f.store.beginTurn(owner: owner, conversationID: nil, system: nil, userText: "crash soon", model: nil, provider: nil, completion: $0) }?.get())
            // A new process starting up (fresh pool/store) sweeps the row the "crashed" one left streaming.
            let g = try Fixture(size: 1)
            _ = g
            let d = try f.wait { f.store.getConversation(owner: owner, id: t.conversation.id, completion: $0) }?.get() ?? nil
            let a = d?.messages.first { $0.id == t.assistantMessageID }
            #expect(a?.status == .interrupted)
            #expect(try f.wait { f.store.sweepInterrupted(completion: $0) }?.get() == 0)
        }
    }
}
