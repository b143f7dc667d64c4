import Glibc
import Testing
@testable import Reactor

/// A fresh folder for one test's journal files.
func makeJournalFolder() -> String {
    let dir = "/tmp/reactor-journal-\(getpid())-\(monotonicNanos())"
    _ = mkdir(dir, 0o700)
    return dir
}

func removeFolder(_ dir: String) {
    for f in JournalFile.list(directory: dir, suffix: "") { _ = unlink(f) }
    _ = rmdir(dir)
}

@Suite struct JournalFramingTests {
    let payloads: [[UInt8]] = [Array("{\"a\":1}".utf8), [], Array(String(repeating: "é", count: 300).utf8)]

    private var framed: [UInt8] { payloads.flatMap(JournalFraming.frame) }

    @Test func recordsReadBackWhole() {
        let (read, valid) = JournalFraming.records(in: framed)
        #expect(read == payloads)
        #expect(valid == framed.count)
    }

    @Test func crcMatchesTheStandardCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    /// A crash at any byte of the last append leaves the records before it, and nothing else.
    @Test func tornLastRecordIsLeftOut() {
        let whole = framed
        let lastStart = whole.count - JournalFraming.frame(payloads[2]).count
        for cut in lastStart..<whole.count {
            let (read, valid) = JournalFraming.records(in: Array(whole[0..<cut]))
            #expect(read == Array(payloads[0..<2]), "cut at \(cut)")
            #expect(valid == lastStart)
        }
    }

    @Test func damagedRecordEndsTheReading() {
        var bytes = framed
        bytes[JournalFraming.headerSize + 2] ^= 0x40  // inside the first payload: its checksum fails
        #expect(JournalFraming.records(in: bytes).payloads.isEmpty)
        var garbledLength = framed
        garbledLength[7] = 0xFF  // the first length says ~4 GiB
        #expect(JournalFraming.records(in: garbledLength).validBytes == 0)
    }
}

@Suite struct JournalFileTests {
    @Test func appendsAreReadBackByTheNextOwnerOnly() throws {
        let dir = makeJournalFolder()
        defer { removeFolder(dir) }
        let file = try JournalFile.create(directory: dir, name: "a.journal")
        try file.append(Array("one".utf8))
        try file.append(Array("two".utf8))
        // Held by a live writer: nobody else may take it.
        #expect(JournalFile.claim(file.path) == nil)
        #expect(JournalFile.list(directory: dir, suffix: ".journal") == [file.path])
        file.close()
        let next = try #require(JournalFile.claim(dir + "/a.journal"))
        let (records, torn) = next.readRecords()
        #expect(records == [Array("one".utf8), Array("two".utf8)])
        #expect(torn == 0)
        #expect(next.size == 2 * JournalFraming.headerSize + 6)
    }

    @Test func tornTailIsReportedAndAppendsContinueAfterTheWholeRecords() throws {
        let dir = makeJournalFolder()
        defer { removeFolder(dir) }
        let file = try JournalFile.create(directory: dir, name: "t.journal")
        try file.append(Array("kept".utf8))
        file.close()
        // A crash part-way through the next append: half a record at the end.
        let half = Array(JournalFraming.frame(Array("lost answer".utf8)).prefix(15))
        let fd = open(dir + "/t.journal", O_WRONLY | O_APPEND)
        #expect(half.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == 15)
        close(fd)
        let claimed = try #require(JournalFile.claim(dir + "/t.journal"))
        let (records, torn) = claimed.readRecords()
        #expect(records == [Array("kept".utf8)])
        #expect(torn == 15)
    }

    @Test func truncateEmptiesAndRemoveUnlinks() throws {
        let dir = makeJournalFolder()
        defer { removeFolder(dir) }
        let file = try JournalFile.create(directory: dir, name: "r.journal")
        try file.append(Array("x".utf8))
        try file.truncate()
        #expect(file.readRecords().payloads.isEmpty)
        #expect(file.size == 0)
        try file.append(Array("y".utf8))
        #expect(file.readRecords().payloads == [Array("y".utf8)])
        // Opened by someone before the remove: once they get the lock the file is gone, so no claim.
        let fd = open(file.path, O_RDWR)
        defer { close(fd) }
        try file.remove()
        #expect(!FileSystem.exists(dir + "/r.journal"))
        #expect(JournalFile.claim(dir + "/r.journal") == nil)
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        var st = stat()
        #expect(fstat(fd, &st) == 0 && st.st_nlink == 0)
    }

    @Test func createRefusesAnExistingName() throws {
        let dir = makeJournalFolder()
        defer { removeFolder(dir) }
        let file = try JournalFile.create(directory: dir, name: "c.journal")
        #expect(throws: SystemError.self) { _ = try JournalFile.create(directory: dir, name: "c.journal") }
        file.close()
    }
}

@Suite struct BlockingWorkerTests {
    /// Jobs run off the loop thread, in order, and each result comes back on the loop in order.
    @Test func resultsComeBackInOrder() throws {
        let loop = try EventLoop()
        let worker = try BlockingWorker(loop: loop, name: "test-blocking", capacity: 64)
        let loopThread = pthread_self()
        var got: [Int] = []
        for i in 0..<50 {
            let ok = worker.submit({
                ReactorThread.sleep(microseconds: UInt32(i % 3) * 100)
                return pthread_equal(pthread_self(), loopThread) != 0 ? SystemError("on the loop", code: 0) : nil
            }, then: { error in
                #expect(error == nil)
                got.append(i)
            })
            #expect(ok)
        }
        #expect(runLoop(loop) { got.count == 50 })
        #expect(got == Array(0..<50))
        worker.join()
        let afterJoin = worker.submit({ nil }, then: { _ in })
        #expect(!afterJoin)
    }

    @Test func aFullQueueRefuses() throws {
        let loop = try EventLoop()
        let worker = try BlockingWorker(loop: loop, name: "test-full", capacity: 2)
        defer { worker.join() }
        let quick: BlockingWorker.Job = { nil }
        let slow: BlockingWorker.Job = { ReactorThread.sleep(microseconds: 20_000); return nil }
        let first = worker.submit(slow, then: { _ in })
        let second = worker.submit(quick, then: { _ in })
        let third = worker.submit(quick, then: { _ in })
        #expect(first && second && !third)
        #expect(runLoop(loop) { worker.inFlight == 0 })
        let again = worker.submit(quick, then: { _ in })
        #expect(again)
    }
}
