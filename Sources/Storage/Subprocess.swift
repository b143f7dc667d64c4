#if canImport(Glibc)
import Glibc
#endif

/// What a finished child process left behind.
struct SubprocessOutput {
    /// Exit status (128 + signal number when it was killed).
    var status: Int32
    /// stdout and stderr, interleaved.
    var output: String

    /// The last non-empty line of output, for one-line error messages.
    var lastLine: String {
        output.split(whereSeparator: { $0 == "\n" }).last.map(String.init) ?? ""
    }
}

/// Blocking process spawning for start-up code (posix_spawn; no Foundation, no shell).
enum Subprocess {
    /// Runs `path` with `args`, waits for it and captures its output.
    /// `searchPath`: look `path` up in PATH (posix_spawnp). Every path passed to children is absolute,
    /// so their working directory (ours) does not matter.
    static func run(_ path: String, _ args: [String], searchPath: Bool = false) -> Result<SubprocessOutput, StorageStartupError> {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return .failure(StorageStartupError("pipe failed: \(errnoText())")) }
        // Other threads may spawn too: keep our pipe out of their children.
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // The server blocks SIGTERM/SIGINT/SIGPIPE before its threads start (signalfd). A child inherits
        // the mask and ignored dispositions; a postmaster started with SIGTERM blocked would ignore
        // `pg_ctl stop`. So the child gets an empty mask and default handlers.
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGPIPE, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = searchPath
            ? posix_spawnp(&pid, path, &actions, &attr, argv, environ)
            : posix_spawn(&pid, path, &actions, &attr, argv, environ)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            return .failure(StorageStartupError("cannot run \(path): \(String(cString: strerror(rc)))"))
        }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n > 0 { bytes.append(contentsOf: buf[0..<n]); continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return .failure(StorageStartupError("waitpid \(path): \(errnoText())")) }
        }
        // WIFEXITED/WEXITSTATUS are macros; decode the wait status by hand.
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return .success(SubprocessOutput(status: code, output: String(decoding: bytes, as: UTF8.self)))
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }

/// A start-up failure of the storage layer, with one clear line for the operator.
public struct StorageStartupError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
