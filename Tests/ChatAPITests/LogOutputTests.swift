import Foundation
import Glibc
import Reactor
import Testing
@testable import ChatAPI

/// The bounded backlog behind a worker's non-blocking log output.
@Suite struct LogBufferTests {
    private func lines(_ s: String...) -> [UInt8] { Array(s.map { $0 + "\n" }.joined().utf8) }

    /// A reader that takes at most `limit` bytes per call (0: full), recording what it took.
    private final class Reader {
        var got: [UInt8] = []
        var limit: Int
        init(limit: Int) { self.limit = limit }
        func take(_ p: UnsafeRawBufferPointer) -> Int {
            let n = min(limit, p.count)
            got += p.prefix(n)
            return n
        }
    }

    @Test func keepsWholeLinesInOrderAcrossPartialWrites() {
        var b = LogBuffer(capacity: 1024)
        let r = Reader(limit: 3)
        b.enqueue(lines("first", "second"))
        var calls = 0
        #expect(b.drain { p in calls += 1; return calls == 1 ? r.take(p) : 0 } == false)
        #expect(b.count == "first\nsecond\n".utf8.count - 3)
        b.enqueue(lines("third"))
        r.limit = .max
        let drained = b.drain(r.take); #expect(drained)
        #expect(String(decoding: r.got, as: UTF8.self) == "first\nsecond\nthird\n")
        #expect(b.droppedLines == 0)
        #expect(b.isEmpty)
    }

    @Test func dropsTheLinesThatDoNotFitAndCountsThem() {
        var b = LogBuffer(capacity: 16)
        b.enqueue(lines("aaaa", "bbbb", "cccc", "dddd"))  // 20 bytes: the first three (15) fit
        #expect(b.count == 15)
        #expect(b.droppedLines == 1)
        b.enqueue(lines("e"))  // 2 bytes, 1 free: dropped
        #expect(b.droppedLines == 2)
        let r = Reader(limit: .max)
        let drained = b.drain(r.take); #expect(drained)
        #expect(String(decoding: r.got, as: UTF8.self) == "aaaa\nbbbb\ncccc\n")
        b.enqueue(lines("ffff"))  // room again once drained
        #expect(b.count == 5)
        #expect(b.droppedLines == 2)
    }

    @Test func aGoneReaderDropsWhatIsHeld() {
        var b = LogBuffer(capacity: 1024)
        b.enqueue(lines("one", "two", "three"))
        #expect(b.drain { _ in -1 } == true)  // nothing left: it was dropped
        #expect(b.isEmpty)
        #expect(b.droppedLines == 3)
    }

    /// A logger on a loop whose pipe nobody reads never blocks; once the reader catches up, what
    /// was kept arrives complete and in order, and the rest is counted as dropped.
    @Test func loggerNeverBlocksOnAFullPipe() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let loop = try EventLoop()
        let logger = Logger(format: .json, level: .info, worker: 0, loop: loop, fd: fds[1], backlogBytes: 64 * 1024)
        close(fds[1])  // the logger holds its own (non-blocking) description of the pipe
        let started = monotonicNanos()
        let total = 5_000
        for i in 0..<total {
            logger.info("line", [("n", .int(i)), ("pad", .string(String(repeating: "x", count: 100)))])
            if i % 100 == 0 { loop.tick(block: false) }
        }
        loop.tick(block: false)
        #expect(Double(monotonicNanos() - started) / 1e9 < 5)
        let dropped = logger.droppedLines
        #expect(dropped > 0)
        // Read everything while driving the loop so the backlog drains.
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        let deadline = monotonicNanos() + 10_000_000_000
        var idleRounds = 0
        while monotonicNanos() < deadline && idleRounds < 30 {
            let n = buf.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n > 0 { out += buf[0..<n]; idleRounds = 0 } else { idleRounds += 1; usleep(5_000) }
            loop.tick(block: false)
        }
        let got = String(decoding: out, as: UTF8.self).split(separator: "\n")
        #expect(UInt64(got.count) + dropped == UInt64(total))
        // Kept lines are whole and in order: the numbers rise strictly.
        var last = -1
        for line in got {
            guard let r = line.range(of: "\"n\":"), let n = Int(line[r.upperBound...].prefix { $0.isNumber }) else {
                Issue.record("not a whole line: \(line.prefix(80))"); break
            }
            #expect(n > last)
            last = n
        }
        #expect(got.first.map { $0.contains("\"n\":0,") } == true)
    }
}

@Suite struct CPUBudgetTests {
    @Test func noLimitsUseTheOnlineCores() {
        #expect(CPUBudget.workers(affinityCPUs: nil, onlineCPUs: 8) == 8)
        #expect(CPUBudget.workers(affinityCPUs: nil, onlineCPUs: 8, cpuMax: ["max 100000\n"]) == 8)
        #expect(CPUBudget.workers(affinityCPUs: nil, onlineCPUs: 8, cfsQuota: "-1\n", cfsPeriod: "100000\n") == 8)
        #expect(CPUBudget.workers(affinityCPUs: nil, onlineCPUs: 0) == 1)
    }

    @Test func affinityNarrows() {
        #expect(CPUBudget.workers(affinityCPUs: 3, onlineCPUs: 16) == 3)
        #expect(CPUBudget.workers(affinityCPUs: 32, onlineCPUs: 16) == 16)
    }

    @Test func quotaRoundsUp() {
        #expect(CPUBudget.workers(affinityCPUs: 16, onlineCPUs: 16, cpuMax: ["200000 100000\n"]) == 2)
        #expect(CPUBudget.workers(affinityCPUs: 16, onlineCPUs: 16, cpuMax: ["150000 100000"]) == 2)
        #expect(CPUBudget.workers(affinityCPUs: 16, onlineCPUs: 16, cpuMax: ["50000 100000"]) == 1)
        #expect(CPUBudget.workers(affinityCPUs: 16, onlineCPUs: 16, cpuMax: ["250000"]) == 3)  // default period
        // The tightest of the cgroup and its ancestors.
        #expect(CPUBudget.workers(affinityCPUs: 16, onlineCPUs: 16, cpuMax: ["max 100000", "400000 100000", "300000 100000"]) == 3)
        // cgroup v1
        #expect(CPUBudget.workers(affinityCPUs: 16, onlineCPUs: 16, cfsQuota: "350000\n", cfsPeriod: "100000\n") == 4)
        #expect(CPUBudget.workers(affinityCPUs: 16, onlineCPUs: 16, cfsQuota: "50000", cfsPeriod: nil) == 1)
    }

    @Test func quotaAndAffinityTakeTheSmaller() {
        #expect(CPUBudget.workers(affinityCPUs: 2, onlineCPUs: 16, cpuMax: ["400000 100000"]) == 2)
        #expect(CPUBudget.workers(affinityCPUs: 8, onlineCPUs: 16, cpuMax: ["400000 100000"]) == 4)
    }

    @Test func garbageMeansNoLimit() {
        #expect(CPUBudget.workers(affinityCPUs: nil, onlineCPUs: 4, cpuMax: ["", "banana", "0 100000", "100000 0"]) == 4)
        #expect(CPUBudget.workers(affinityCPUs: nil, onlineCPUs: 4, cfsQuota: "x", cfsPeriod: "100000") == 4)
    }

    @Test func cgroupPath() {
        #expect(CPUBudget.cgroupV2Path(procSelfCgroup: "0::/system.slice/chatrelay.service\n") == "/system.slice/chatrelay.service")
        #expect(CPUBudget.cgroupV2Path(procSelfCgroup: "12:cpu,cpuacct:/docker/abc\n0::/\n") == "/")
        #expect(CPUBudget.cgroupV2Path(procSelfCgroup: "4:cpu,cpuacct:/\n") == nil)
    }

    @Test func affinityList() {
        #expect(CPUBudget.affinityCPUs(procSelfStatus: "Name:\tx\nCpus_allowed:\tff\nCpus_allowed_list:\t0-3,8,10-11\nMems_allowed_list:\t0\n") == 7)
        #expect(CPUBudget.affinityCPUs(procSelfStatus: "Cpus_allowed_list:\t5\n") == 1)
        #expect(CPUBudget.affinityCPUs(procSelfStatus: "Cpus_allowed_list:\t3-1\n") == nil)
        #expect(CPUBudget.affinityCPUs(procSelfStatus: "Name:\tx\n") == nil)
    }

    @Test func detectsSomethingSane() {
        let n = CPUBudget.detect()
        #expect(n >= 1)
        #expect(n <= max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
        if let a = CPUBudget.affinityCPUs() { #expect(n <= a) }
    }
}
