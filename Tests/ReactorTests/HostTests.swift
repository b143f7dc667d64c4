import Testing
import Glibc
@testable import Reactor

/// The small host layer ChatAPI calls instead of libc and libcrypto.
@Suite struct HostTests {
    @Test func sha256KnownVectors() {
        let hex = { (b: [UInt8]) in b.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }
        #expect(hex(Crypto.sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(Crypto.sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func constantTimeEquals() {
        #expect(Crypto.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2]))
    }

    @Test func fileRoundTrip() throws {
        let dir = "/tmp/reactor-host-\(getpid())-\(monotonicNanos())"
        try FileSystem.makeDirectory(dir, mode: 0o700)
        try FileSystem.makeDirectory(dir, mode: 0o700)  // already there: fine
        defer { unlink(dir + "/f"); rmdir(dir) }
        #expect(!FileSystem.exists(dir + "/f"))
        #expect(FileSystem.readFile(dir + "/f") == nil)
        try FileSystem.writeFile(dir + "/f", "hello\n", mode: 0o600)
        #expect(FileSystem.exists(dir + "/f"))
        #expect(FileSystem.readFile(dir + "/f") == "hello\n")
        var st = stat()
        #expect(stat(dir + "/f", &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(throws: SystemError.self) { try FileSystem.writeFile(dir + "/missing/f", "x", mode: 0o600) }
    }

    @Test func environmentAndProcessors() {
        setenv("REACTOR_HOST_TEST", "a=b", 1)
        #expect(ProcessEnvironment.variables()["REACTOR_HOST_TEST"] == "a=b")
        #expect(ReactorThread.onlineProcessorCount >= 1)
    }
}
