import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ChatAPIEndToEnd {
    @Suite(.serialized) struct DatabaseOutage {
        @Test(.enabled(if: ChatTestDatabase.isEmbedded, "needs the embedded cluster to stop and start it"))
        func stopAndRestart() throws {
            let db = try ChatTestDatabase.get()
            let pg = try #require(db.embedded)
            let mock = try Shared.mock.get()
            let relay = try Relay(mock: mock)
            // Accepted before the outage.
            let before = try relay.chat(["message": "echo:remember this", "model": "gpt-4.1"])
            let id = try #require(before.conversationID)
            #expect(before.first("done") != nil)

            try pg.stop(mode: .immediate)
            var restarted = false
            defer { if !restarted { _ = try? pg.start() } }
            var health: HTTPResult?
            #expect(waitUntil(seconds: 15) {
                health = try? relay.get("/api/v1/health", key: nil)
                return health?.status == 503
            }, "health stayed \(health?.status ?? 0) \(health?.text ?? "")")
            #expect(health?.json?.str("database") == "unavailable")

            let requests = mock.requestCount
            let refused = try relay.chat(["message": "echo:while down", "model": "gpt-4.1"])
            #expect(refused.status == 503, "\(refused.status) \(String(decoding: refused.body, as: UTF8.self))")
            #expect(mock.requestCount == requests, "the upstream was called while the database was down")

            _ = try pg.start()
            restarted = true
            #expect(waitUntil(seconds: 20) { (try? relay.get("/api/v1/health", key: nil))?.status == 200 }, "health did not recover")
            let after = try relay.chat(["message": "echo:back again", "model": "gpt-4.1", "conversation_id": id])
            #expect(after.status == 200)
            #expect(after.text == "back again")
            let messages = try relay.messages(id)
            #expect(messages.map { $0.str("content") ?? "" } == ["echo:remember this", "remember this", "echo:back again", "back again"])
            #expect(messages.filter { $0.str("role") == "assistant" }.allSatisfy { $0.str("status") == "complete" })
        }
    }

    @Suite(.serialized) struct DatabaseOutageMidStream {
        /// The database goes away while an answer is streaming and comes back after it ended:
        /// the client still gets its answer, and the answer is stored once the database is back.
        @Test(.enabled(if: ChatTestDatabase.isEmbedded, "needs the embedded cluster to stop and start it"))
        func answerFinishedWhileDatabaseDownIsStoredLater() throws {
            let db = try ChatTestDatabase.get()
            let pg = try #require(db.embedded)
            let mock = try Shared.mock.get()
            let relay = try Relay(mock: mock)
            let s = try relay.openChat(["message": "[mock tokens=20 delay=50]", "model": "gpt-4.1"])
            let id = try #require(try s.next(event: "start")?.json?.str("conversation_id"))
            _ = try s.next(event: "token")
            try pg.stop(mode: .immediate)
            var restarted = false
            defer { if !restarted { _ = try? pg.start() } }
            let r = try s.readToEnd()
            #expect(r.events.last?.event == "done", "events: \(r.events.map(\.event).suffix(3))")
            #expect(r.text == mockText(tokens: 20))
            _ = try pg.start()
            restarted = true
            var answer: [String: Any] = [:]
            let stored = waitUntil(seconds: 20) {
                answer = (try? relay.messages(id).last) ?? [:]
                return answer.str("status") == "complete"
            }
            #expect(stored, "answer after the outage: \(answer.str("status") ?? "-") \(answer.str("content") ?? "-")")
            #expect(answer.str("content") == mockText(tokens: 20))
            // It was journaled before `done`, and the journal let go of it once it was stored.
            var metrics = ""
            #expect(waitUntil(seconds: 10) {
                metrics = (try? relay.get("/metrics", key: nil))?.text ?? ""
                return metrics.contains("\nchatrelay_journal_answers 0\n")
            }, "\(metrics.split(separator: "\n").filter { $0.hasPrefix("chatrelay_journal") })")
            #expect(metrics.contains("\nchatrelay_journal_appends_total 1\n"))
            #expect(metrics.contains("\nchatrelay_journal_failures_total 0\n"))
        }
    }

    @Suite(.serialized) struct Concurrency {
        /// 500 streams at once on one worker: every one ends with `done` and is stored complete.
        @Test(.timeLimit(.minutes(3))) func fiveHundredStreams() throws {
            raiseFileLimit()
            let mock = try Shared.mock.get()
            let relay = try Relay(mock: mock, ["CHAT_WORKERS": "1"])
            let n = 500
            let tokens = 20
            let body = jsonBytes(["message": "[mock tokens=\(tokens) delay=5]", "model": "gpt-4.1"])
            let request = requestBytes(method: "POST", path: "/api/v1/chat",
                                       headers: ["Authorization": "Bearer k1", "Content-Type": "application/json", "Connection": "close"], body: body)
            var sockets: [TestSocket] = []
            for _ in 0..<n {
                let s = try TestSocket(port: relay.port)
                try s.send(request)
                sockets.append(s)
            }
            var parsers = Array(repeating: ResponseParser(), count: n)
            var sse = Array(repeating: SSEParser(), count: n)
            var events = Array(repeating: [SSEEvent](), count: n)
            var open = Set(0..<n)
            let deadline = Date().addingTimeInterval(120)
            while !open.isEmpty && Date() < deadline {
                var fds = open.map { pollfd(fd: sockets[$0].fd, events: Int16(POLLIN), revents: 0) }
                let idx = Array(open)
                let rc = poll(&fds, nfds_t(fds.count), 500)
                guard rc > 0 else { continue }
                for (k, p) in fds.enumerated() where p.revents != 0 {
                    let i = idx[k]
                    guard let bytes = try sockets[i].receive(seconds: 0) else { continue }
                    if bytes.isEmpty { open.remove(i); continue }
                    let before = parsers[i].body.count
                    try parsers[i].feed(bytes)
                    if parsers[i].body.count > before {
                        events[i] += sse[i].feed(Array(parsers[i].body[before...])).compactMap(\.event)
                    }
                    if parsers[i].complete { open.remove(i) }
                }
            }
            for s in sockets { s.close() }
            #expect(open.isEmpty, "\(open.count) streams did not finish in time")
            let expected = mockText(tokens: tokens)
            var ids: [String] = []
            var failures: [String] = []
            for i in 0..<n {
                let e = events[i]
                let text = e.filter { $0.event == "token" }.compactMap { $0.json?.str("text") }.joined()
                if parsers[i].status != 200 || e.last?.event != "done" || text != expected {
                    failures.append("#\(i): status \(parsers[i].status) last \(e.last?.event ?? "-") \(e.last?.data ?? "") text \(text.count)")
                }
                if let id = e.first(where: { $0.event == "start" })?.json?.str("conversation_id") { ids.append(id) }
            }
            #expect(failures.isEmpty, "\(failures.count) streams failed, e.g. \(failures.prefix(5))")
            #expect(Set(ids).count == n)
            var bad: [String] = []
            for id in ids {
                let m = try relay.messages(id).last ?? [:]
                if m.str("status") != "complete" || m.str("content") != expected { bad.append("\(id): \(m.str("status") ?? "-")") }
            }
            #expect(bad.isEmpty, "\(bad.count) answers not stored complete, e.g. \(bad.prefix(5))")
        }
    }

    @Suite(.serialized) struct Backpressure {
        /// A client that does not read for a while gets every token once it does (the upstream is
        /// paused, not dropped), and the stored answer is complete.
        @Test func slowReaderGetsEverything() throws {
            let relay = try Shared.relay.get()
            let n = 40_000
            let pausesBefore = try Scrape.get(relay).value("chatrelay_upstream_pauses_total")
            let s = try relay.openChat(["message": "[mock tokens=\(n)]", "model": "gpt-4.1"], timeout: 90)
            let id = try #require(try s.next(event: "start")?.json?.str("conversation_id"))
            sleep(2)
            // The transfer really stopped while nobody read (curl held it paused), not just buffered.
            #expect(try Scrape.get(relay).value("chatrelay_upstream_pauses_total") > pausesBefore)
            let r = try s.readToEnd()
            #expect(r.events.last?.event == "done")
            let tokens = r.events.filter { $0.event == "token" }.count
            #expect(tokens == n)
            #expect(r.text == mockText(tokens: n))
            let answer = try relay.finalAnswer(id)
            #expect(answer.str("status") == "complete")
            #expect((answer.str("content") ?? "").count == mockText(tokens: n).count)
        }
    }

    @Suite(.serialized) struct MultiModelBackpressure {
        /// A slow client of a multi-model turn pauses every run's transfer, and then gets every
        /// run's whole answer.
        @Test func aSlowReaderPausesEveryRun() throws {
            let relay = try Shared.relay.get()
            let n = 30_000
            let pausesBefore = try Scrape.get(relay).value("chatrelay_upstream_pauses_total")
            let s = try relay.openChat(["message": "[mock tokens=\(n)]", "models": ["gpt-4.1", "gpt-4o-mini"]], timeout: 90)
            let runs = try #require(try s.next(event: "start")?.json?["runs"] as? [[String: Any]])
            sleep(2)
            // Nobody reads, so no paused transfer resumes: two pauses are the two runs' transfers.
            #expect(try Scrape.get(relay).value("chatrelay_upstream_pauses_total") - pausesBefore >= 2)
            let r = try s.readToEnd()
            #expect(r.events.last?.event == "end")
            for run in runs.compactMap({ $0["run"] as? String }) {
                let text = r.events.filter { $0.event == "token" && $0.json?["run"] as? String == run }
                    .compactMap { $0.json?["text"] as? String }.joined()
                #expect(text == mockText(tokens: n), "run \(run): \(text.count) characters")
            }
        }
    }

    @Suite(.serialized) struct OpenAISurface {
        @Test func streamWithUsage() throws {
            let relay = try Shared.relay.get()
            let body: [String: Any] = ["model": "gpt-4.1", "stream": true, "stream_options": ["include_usage": true],
                                       "messages": [["role": "user", "content": "[mock tokens=4]"]]]
            let s = try SSEClient(port: relay.port, path: "/v1/chat/completions",
                                  headers: ["Authorization": "Bearer k1", "Content-Type": "application/json"],
                                  body: try JSONSerialization.data(withJSONObject: body), timeout: 20)
            let r = try s.readToEnd()
            #expect(r.status == 200)
            #expect(r.header("Content-Type")?.hasPrefix("text/event-stream") == true)
            let datas = r.events.map(\.data)
            #expect(datas.last == "[DONE]")
            let chunks = datas.dropLast().compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            #expect(chunks.count == datas.count - 1)
            #expect(chunks.allSatisfy { $0.str("object") == "chat.completion.chunk" })
            let first = (chunks.first?["choices"] as? [[String: Any]])?.first
            #expect(first?.obj("delta")?.str("role") == "assistant")
            let finishIndex = chunks.firstIndex { (($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String) == "stop" }
            #expect(finishIndex != nil)
            let usageChunk = chunks.last
            #expect((usageChunk?["choices"] as? [Any])?.isEmpty == true, "last chunk: \(String(describing: usageChunk))")
            #expect(usageChunk?.obj("usage")?.int("completion_tokens") == 4)
            if let f = finishIndex { #expect(f == chunks.count - 2) }
            let text = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?.obj("delta")?.str("content")) }.joined()
            #expect(text == mockText(tokens: 4))
        }

        @Test func errorsInOpenAIShape() throws {
            let relay = try Shared.relay.get()
            let headers = ["Authorization": "Bearer k1", "Content-Type": "application/json"]
            let limited = try HTTPClient.request(port: relay.port, method: "POST", path: "/v1/chat/completions", headers: headers,
                                                 body: jsonBytes(["model": "gpt-4.1", "stream": true,
                                                                  "messages": [["role": "user", "content": "[mock fault=429]"]]]))
            #expect(limited.status == 429)
            #expect(limited.header("Retry-After") != nil)
            let err = limited.json?.obj("error")
            #expect(err?.str("message")?.isEmpty == false)
            #expect(err?["type"] != nil)
            // Another key's conversation through X-Conversation-Id: 404, no content.
            let mine = try relay.chat(["message": "private words", "model": "mock-echo"], key: "k1")
            let id = try #require(mine.conversationID)
            var h2 = headers
            h2["Authorization"] = "Bearer k2"
            h2["X-Conversation-Id"] = id
            let other = try HTTPClient.request(port: relay.port, method: "POST", path: "/v1/chat/completions", headers: h2,
                                               body: jsonBytes(["model": "mock-echo", "messages": [["role": "user", "content": "hi"]]]))
            #expect(other.status == 404)
            #expect(!other.text.contains("private words"))
            #expect(try relay.messages(id, key: "k1").count == 2)
        }

        @Test func conversationIdNewIsStored() throws {
            let relay = try Shared.relay.get()
            let body: [String: Any] = ["model": "mock-echo", "messages": [["role": "user", "content": "keep me please"]]]
            let r = try HTTPClient.request(port: relay.port, method: "POST", path: "/v1/chat/completions",
                                           headers: ["Authorization": "Bearer k1", "Content-Type": "application/json", "X-Conversation-Id": "new"],
                                           body: jsonBytes(body))
            #expect(r.status == 200)
            let id = try #require(r.header("X-Conversation-Id"))
            #expect(UUID(uuidString: id) != nil)
            let content = ((r.json?["choices"] as? [[String: Any]])?.first?.obj("message"))?.str("content")
            #expect(content == "keep me please")
            let messages = try relay.messages(id)
            #expect(messages.map { $0.str("role") ?? "" } == ["user", "assistant"])
            #expect(messages.last?.str("content") == "keep me please")
            #expect(messages.last?.str("status") == "complete")
        }
    }

    @Suite(.serialized) struct Drain {
        /// SIGTERM while a stream is in flight: it finishes, is stored, and the process exits 0.
        @Test func inFlightStreamFinishes() throws {
            let (relay, s, id) = try streamThenTerminate(try Shared.mock.get(), message: "[mock tokens=40 delay=50]")
            try expectFinishedStoredAndExited(s, relay: relay, conversation: id, tokens: 40)
        }

        /// After SIGTERM the instance is reachable but unready: on new connections health is 503
        /// `draining` and new work is 503 `overloaded` with `Connection: close` (each API surface in
        /// its own error shape), while the open stream finishes and is stored; then it exits.
        @Test func newRequestsRefusedWhileOpenStreamFinishes() throws {
            let (relay, s, id) = try streamThenTerminate(try Shared.mock.get(), ["CHAT_DRAIN_S": "20"],
                                                         message: "[mock tokens=30 delay=100]")

            var health: HTTPResult?
            #expect(waitUntil(seconds: 5) {
                health = try? relay.get("/api/v1/health", key: nil)
                return health?.status == 503
            }, "health stayed \(health?.status ?? 0) \(health?.text ?? "")")
            #expect(health?.json?.str("status") == "draining")
            #expect(health?.json?.str("database") == "ok")
            #expect(health?.json?["uptime_s"] is Int)

            let chatBody = jsonBytes(["message": "echo:too late", "model": "gpt-4.1"])
            let refused = try keepAliveRequest(port: relay.port, method: "POST", path: "/api/v1/chat", body: chatBody)
            #expect(refused.response.status == 503)
            #expect(refused.response.errorType == "overloaded")
            #expect(refused.response.errorMessage == "the server is shutting down")
            #expect(refused.response.header("Retry-After") == "1")
            #expect(refused.response.header("Connection")?.lowercased() == "close")
            #expect(refused.closedAfter, "the connection must close after the 503")

            let openAIBody = jsonBytes(["model": "gpt-4.1", "messages": [["role": "user", "content": "too late"]]])
            let openAI = try keepAliveRequest(port: relay.port, method: "POST", path: "/v1/chat/completions", body: openAIBody)
            #expect(openAI.response.status == 503)
            #expect(openAI.response.errorType == "service_unavailable_error", "\(openAI.response.text)")
            #expect(relay.child.isRunning, "the worker stopped while a stream was still open")

            try expectFinishedStoredAndExited(s, relay: relay, conversation: id, tokens: 30)
        }

        /// A fresh relay (with `env`) streaming `message`, sent SIGTERM once the first token is in:
        /// the relay, the open stream and its conversation's id.
        private func streamThenTerminate(_ mock: MockUpstream, _ env: [String: String] = [:],
                                         message: String) throws -> (Relay, SSEClient, String) {
            let relay = try Relay(mock: mock, env)
            let s = try relay.openChat(["message": message, "model": "gpt-4.1"])
            let id = try #require(try s.next(event: "start")?.json?.str("conversation_id"))
            _ = try s.next(event: "token")
            relay.child.signal(SIGTERM)
            return (relay, s, id)
        }

        /// The open stream ends with `done` and the mock's whole text, the draining process exits
        /// 0, and the answer, read through another instance, is stored `complete`.
        private func expectFinishedStoredAndExited(_ s: SSEClient, relay: Relay, conversation id: String, tokens: Int) throws {
            let r = try s.readToEnd()
            #expect(r.events.last?.event == "done", "events: \(r.events.map(\.event).suffix(3))")
            #expect(r.text == mockText(tokens: tokens))
            let code = relay.child.waitForExit(seconds: 10)
            #expect(code == 0, "exit code \(String(describing: code))\n\(relay.child.log.suffix(2000))")
            let other = try Shared.relay.get()
            let answer = try other.finalAnswer(id)
            #expect(answer.str("status") == "complete")
            #expect(answer.str("content") == mockText(tokens: tokens))
        }

        /// CHAT_DRAIN_S=1 and a long stream: the client gets an error event and the row is `error`.
        @Test func drainPeriodEndsLongStream() throws {
            let mock = try Shared.mock.get()
            let (relay, s, id) = try streamThenTerminate(mock, ["CHAT_DRAIN_S": "1"], message: "[mock tokens=400 delay=50]")
            let r = try s.readToEnd()
            #expect(r.events.last?.event == "error", "events: \(r.events.map(\.event).suffix(3))")
            let code = relay.child.waitForExit(seconds: 10)
            #expect(code == 0, "exit code \(String(describing: code))")
            let other = try Shared.relay.get()
            let answer = try other.finalAnswer(id)
            #expect(answer.str("status") == "error")
            #expect((answer.str("content") ?? "").hasPrefix(r.text) && !r.text.isEmpty)
            #expect(waitUntil(seconds: 3) { mock.activeStreams == 0 })
        }
    }
}

/// One request on a fresh keep-alive connection: the response, and whether the server then
/// closed the connection (as it must for anything answered during a drain).
private func keepAliveRequest(port: Int, method: String, path: String, body: [UInt8],
                              timeout: Double = 10) throws -> (response: HTTPResult, closedAfter: Bool) {
    let socket = try TestSocket(port: port)
    defer { socket.close() }
    let headers = ["Authorization": "Bearer k1", "Content-Type": "application/json", "Connection": "keep-alive"]
    try socket.send(requestBytes(method: method, path: path, headers: headers, body: body))
    let response = try HTTPClient.readResponse(from: socket, label: "\(method) \(path)", timeout: timeout, closeMayEndBody: false)
    let closed = (try? socket.receive(seconds: 3))?.map { $0.isEmpty } ?? false
    return (response, closed)
}
