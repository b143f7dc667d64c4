import Reactor
import Storage

/// One worker's answers that are finished but not yet in the database, kept in a file of its own
/// (`<CHAT_JOURNAL_DIR>/<instance>-w<worker>.journal`) so a crash during a database outage loses
/// none of them. It is touched only while the database is away: an answer whose final write
/// failed is appended and synced (on the worker's writer thread, never on the loop) before its
/// client gets `done`, and the file is emptied once every answer in it is stored.
///
/// Each file is locked (`JournalFile`) by the process writing it. At start-up a worker takes over
/// the files nobody holds (their process is gone): their answers are appended to its own file,
/// which is synced, and only then is the old file removed; a crash in between leaves an answer in
/// two files, and writing it twice changes nothing.
final class AnswerJournal {
    static let suffix = ".journal"

    private let file: JournalFile
    private let writer: BlockingWorker
    private let logger: Logger
    /// Answers in the file (or on their way to it) not yet stored: `chatrelay_journal_answers`.
    private(set) var answers = 0
    /// Answers appended, and appends that failed (the answer then waits in memory only).
    private(set) var appended: UInt64 = 0
    private(set) var failures: UInt64 = 0
    /// The file may hold records, so it is emptied when `answers` is back to 0.
    private var holdsRecords = false

    /// What start-up found in the journals of processes that are gone.
    struct Replay {
        var answers: [PendingAnswer] = []
        var files = 0
        /// Bytes after the last whole record of a file (a crash part-way through an append).
        var tornBytes = 0
        /// Whole records that are not answers this version reads (skipped, and logged).
        var unreadable = 0
    }

    private init(file: JournalFile, writer: BlockingWorker, logger: Logger) {
        self.file = file
        self.writer = writer
        self.logger = logger
    }

    /// Start-up, before the loop runs (it may block): creates this worker's file and takes over the
    /// journals whose writers are gone. The answers taken over are in the new file, and counted.
    static func open(directory: String, name: String, loop: EventLoop, logger: Logger) throws(SystemError) -> (AnswerJournal, Replay) {
        let file = try JournalFile.create(directory: directory, name: name + suffix)
        var replay = Replay()
        for path in JournalFile.list(directory: directory, suffix: suffix) where path != file.path {
            guard let orphan = JournalFile.claim(path) else { continue }
            let (records, torn) = orphan.readRecords()
            replay.files += 1
            replay.tornBytes += torn
            for record in records {
                switch PendingAnswer.fromJournal(record) {
                case .failure(let e):
                    replay.unreadable += 1
                    logger.error("journal record skipped", [("file", .string(path)), ("error", .string(e.description))])
                case .success(let answer):
                    try file.append(record)
                    replay.answers.append(answer)
                }
            }
            do { try orphan.remove() } catch {
                logger.warn("could not remove a replayed journal; its answers may be written again", [("error", .string(error.description))])
            }
        }
        let writer: BlockingWorker
        do { writer = try BlockingWorker(loop: loop, name: "journal-" + name, capacity: 16_384) } catch {
            try? file.remove()
            throw error
        }
        let journal = AnswerJournal(file: file, writer: writer, logger: logger)
        journal.answers = replay.answers.count
        journal.holdsRecords = !replay.answers.isEmpty
        return (journal, replay)
    }

    /// Appends `answer` and syncs it off the loop; `then(true)` once it is on disk, `then(false)`
    /// when it could not be (it then waits in memory only, as without a journal).
    func append(_ answer: PendingAnswer, then: @escaping (Bool) -> Void) {
        let record = answer.journalRecord(), file = self.file
        // Counted from now, so an emptying queued meanwhile cannot come after this append.
        answers += 1
        holdsRecords = true
        let queued = writer.submit({
            do throws(SystemError) { try file.append(record); return nil } catch { return error }
        }, then: { [self] error in
            if let error {
                answers -= 1
                failures += 1
                logger.error("could not journal the answer; it waits in memory only",
                             [("message_id", .string(answer.messageID)), ("error", .string(error.description))])
                then(false)
            } else {
                appended += 1
                then(true)
            }
        })
        if !queued {
            answers -= 1
            failures += 1
            logger.error("the journal takes no more answers (its queue is full, or the worker is stopping); the answer waits in memory only",
                         [("message_id", .string(answer.messageID))])
            then(false)
        }
    }

    /// A journaled answer is in the database (or can never be): once none is left, the file is
    /// emptied. The emptying runs after every append queued before it, and none of those is
    /// still waiting (`answers` counts them from the moment they are queued).
    func answerStored() {
        answers -= 1
        guard answers == 0, holdsRecords else { return }
        holdsRecords = false
        let file = self.file
        writer.submit({
            do throws(SystemError) { try file.truncate(); return nil } catch { return error }
        }, then: { [self] error in
            // The records stay; writing them again at the next start-up changes nothing.
            if let error { logger.warn("could not empty the journal", [("error", .string(error.description))]) }
        })
    }

    /// The worker stops: an empty journal is removed, one with answers still waiting is closed
    /// (and unlocked) for the next start-up to replay. The writer thread ends after this.
    func close() {
        let file = self.file, empty = answers == 0
        writer.submit({
            if empty {
                do throws(SystemError) { try file.remove() } catch { return error }
            } else {
                file.close()
            }
            return nil
        }, then: { _ in })
        writer.close()
    }

    /// Waits for the writer thread (after `close`, once the loop has stopped).
    func join() { writer.join() }
}
