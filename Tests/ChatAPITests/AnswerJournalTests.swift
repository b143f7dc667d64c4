import Glibc
import JSONCore
import Reactor
import Storage
import Testing
@testable import ChatAPI

/// The answer journal: its record format, and taking over the journals of processes that are gone.
@Suite struct AnswerJournalTests {
    static func answer(_ n: Int, usage: Bool = true) -> PendingAnswer {
        let turn = TurnStart(conversationID: "1869d757-20bb-47e7-9cfb-8668f6c88cb\(n % 10)", title: n.isMultiple(of: 2) ? "t\(n)" : nil,
                             systemPrompt: "be brief", conversationModel: "chat", isNewConversation: true,
                             userMessageID: "2869d757-20bb-47e7-9cfb-8668f6c88cb\(n % 10)", userText: "question \(n) \"quoted\"\n",
                             assistantMessageID: "9d070184-7f24-4808-b49f-3d25e4f7a41\(n % 10)", model: "chat", provider: "openai",
                             deployment: "openai-main", upstreamModel: nil)
        return PendingAnswer(owner: "owner-hash", messageID: turn.assistantMessageID, text: "answer \(n) é 😀", status: .complete,
                             finishReason: "stop",
                             usage: usage ? TokenUsage(promptTokens: 9, completionTokens: nil, totalTokens: 21) : nil,
                             ttftMs: 180, latencyMs: nil, error: nil, model: "chat", deployment: "openai-main",
                             upstreamModel: "gpt-5.4-mini", attemptsJSON: #"[{"model":"chat","outcome":"ok","ms":948}]"#, turn: turn)
    }

    @Test func journalFolderFollowsTheDataFolderUnlessSet() throws {
        #expect(try ConfigLoader.load(arguments: [], environment: [:], dotEnv: nil).journalDir == "./.chatrelay/journal")
        #expect(try ConfigLoader.load(arguments: ["--data-dir", "/srv/relay"], environment: [:], dotEnv: nil).journalDir == "/srv/relay/journal")
        let set = try ConfigLoader.load(arguments: [], environment: ["CHAT_DATA_DIR": "/a", "CHAT_JOURNAL_DIR": "/b/j"], dotEnv: nil)
        #expect(set.journalDir == "/b/j")
        #expect(try ConfigLoader.load(arguments: [], environment: ["CHAT_JOURNAL_DIR": "off"], dotEnv: nil).journalDir == nil)
    }

    @Test func recordRoundTripsEveryValueOfTheFinalWrite() throws {
        for a in [Self.answer(1), Self.answer(2, usage: false)] {
            let back = try PendingAnswer.fromJournal(a.journalRecord()).get()
            #expect(back == a)
        }
        var failed = Self.answer(3)
        failed.status = .error
        failed.error = "upstream went away"
        failed.finishReason = nil
        failed.attemptsJSON = nil
        #expect(try PendingAnswer.fromJournal(failed.journalRecord()).get() == failed)
    }

    @Test func recordsWithFieldsItDoesNotKnowStillRead() throws {
        var record = Self.answer(4).journalRecord()
        record.removeLast()  // the closing brace
        record += Array(#","run_id":"r1","runs":[1,2]}"#.utf8)
        #expect(try PendingAnswer.fromJournal(record).get() == Self.answer(4))
    }

    @Test func recordsItCannotReadAreRefusedNotTrusted() {
        let other = Array(#"{"v":2,"owner":"o"}"#.utf8)
        #expect((try? PendingAnswer.fromJournal(other).get()) == nil)
        let missing = Array(#"{"v":1,"owner":"o","message_id":"m","text":"t","status":"complete"}"#.utf8)
        #expect((try? PendingAnswer.fromJournal(missing).get()) == nil)
        let badStatus = String(decoding: Self.answer(5).journalRecord(), as: UTF8.self).replacing("\"complete\"", with: "\"nope\"")
        #expect((try? PendingAnswer.fromJournal(Array(badStatus.utf8)).get()) == nil)
        #expect((try? PendingAnswer.fromJournal(Array("{not json".utf8)).get()) == nil)
    }

    /// A gone process's journal (with a torn last append) is taken over at start-up: its answers
    /// move to the new file, the old one is removed, and the new one is emptied once they are
    /// stored and removed when the worker stops.
    @Test func startUpTakesOverOrphansAndEmptiesOnceStored() throws {
        let dir = makeFolder()
        defer { removeFolder(dir) }
        let orphan = try JournalFile.create(directory: dir, name: "dead-w0.journal")
        try orphan.append(Self.answer(1).journalRecord())
        try orphan.append(Self.answer(2).journalRecord())
        try orphan.append(Array(#"{"v":1}"#.utf8))  // whole, but not an answer
        let torn = Array(JournalFraming.frame(Self.answer(3).journalRecord()).prefix(40))
        let fd = open(orphan.path, O_WRONLY | O_APPEND)
        _ = torn.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        orphan.close()
        // A live process's journal is left alone.
        let live = try JournalFile.create(directory: dir, name: "live-w0.journal")
        try live.append(Self.answer(7).journalRecord())

        let loop = try EventLoop()
        let logger = Logger(format: .json, level: .error, worker: 0, loop: nil, fd: open("/dev/null", O_WRONLY))
        let (journal, replay) = try AnswerJournal.open(directory: dir, name: "me-w0", loop: loop, logger: logger)
        #expect(replay.answers == [Self.answer(1), Self.answer(2)])
        #expect(replay.files == 1)
        #expect(replay.tornBytes == 40)
        #expect(replay.unreadable == 1)
        #expect(journal.answers == 2)
        #expect(!FileSystem.exists(dir + "/dead-w0.journal"))
        #expect(FileSystem.exists(dir + "/live-w0.journal"))
        let mine = dir + "/me-w0.journal"
        #expect(recordsIn(mine, whileHeldBy: journal) == 2)

        var durable: [Bool] = []
        journal.append(Self.answer(4)) { durable.append($0) }
        #expect(runLoop(loop) { durable.count == 1 })
        #expect(durable == [true])
        #expect(journal.answers == 3 && journal.appended == 1)
        #expect(recordsIn(mine, whileHeldBy: journal) == 3)

        journal.answerStored()
        journal.answerStored()
        #expect(recordsIn(mine, whileHeldBy: journal) == 3)  // one still waits: nothing is emptied
        journal.answerStored()
        #expect(runLoop(loop) { fileSize(mine) == 0 })
        journal.close()
        journal.join()
        #expect(!FileSystem.exists(mine))
        live.close()
    }

    /// A worker stopping with answers still waiting leaves its journal for the next start-up.
    @Test func stoppingWithAnswersWaitingKeepsTheFile() throws {
        let dir = makeFolder()
        defer { removeFolder(dir) }
        let loop = try EventLoop()
        let logger = Logger(format: .json, level: .error, worker: 0, loop: nil, fd: open("/dev/null", O_WRONLY))
        let (journal, _) = try AnswerJournal.open(directory: dir, name: "a-w0", loop: loop, logger: logger)
        var done = false
        journal.append(Self.answer(1)) { _ in done = true }
        #expect(runLoop(loop) { done })
        journal.close()
        journal.join()
        let (next, replay) = try AnswerJournal.open(directory: dir, name: "b-w0", loop: loop, logger: logger)
        #expect(replay.answers == [Self.answer(1)])
        next.close()
        next.join()
    }

    private func makeFolder() -> String {
        let dir = "/tmp/chatapi-journal-\(getpid())-\(monotonicNanos())"
        _ = mkdir(dir, 0o700)
        return dir
    }

    private func removeFolder(_ dir: String) {
        for f in JournalFile.list(directory: dir, suffix: "") { _ = unlink(f) }
        _ = rmdir(dir)
    }

    private func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : -1
    }

    /// Whole records in `path`, read through a second descriptor (the journal keeps its lock).
    private func recordsIn(_ path: String, whileHeldBy _: AnswerJournal) -> Int {
        var bytes: [UInt8] = []
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return -1 }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += buf[0..<n]
        }
        return JournalFraming.records(in: bytes).payloads.count
    }

    /// Turns the loop until `done` or `seconds` pass; false on timeout.
    private func runLoop(_ loop: EventLoop, seconds: Double = 5, until done: () -> Bool) -> Bool {
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        let wake = loop.schedule(afterMillis: 10) {}
        defer { loop.cancel(wake) }
        while !done() {
            if monotonicNanos() > deadline { return false }
            loop.tick(block: false)
            ReactorThread.sleep(microseconds: 1_000)
        }
        return true
    }
}
