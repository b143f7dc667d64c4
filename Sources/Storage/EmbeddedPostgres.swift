#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// A private PostgreSQL cluster in `<dataDir>/pg`, run with the machine's PostgreSQL binaries when
/// no `DATABASE_URL` is configured. It listens only on a Unix socket in `<dataDir>/pg/run`.
///
/// Start-up code: every call blocks (initdb, pg_ctl) and must run before any loop does.
/// When the process runs as root, initdb and postgres (which refuse root, docs/reactor-notes.md D1) run as the
/// `postgres` system user through `runuser -u postgres --`, as Debian's own scripts do.
public struct EmbeddedPostgres: Sendable {
    /// How `stop` shuts the server down (`pg_ctl -m`).
    public enum StopMode: String, Sendable {
        /// Disconnect clients, shut down cleanly.
        case fast
        /// Kill at once; the next start replays the WAL (a crash, for tests).
        case immediate
    }

    public let dataDir: String
    public let databaseName: String
    public let port: Int
    /// `<dataDir>/pg`: everything the cluster owns.
    public var root: String { join(dataDir, "pg") }
    /// The cluster's data directory (`PGDATA`).
    public var dataPath: String { join(root, "data") }
    /// Where the Unix socket lives.
    public var socketDir: String { join(root, "run") }
    /// The server log (`pg_ctl -l`).
    public var logPath: String { join(root, "postgres.log") }

    public init(dataDir: String, databaseName: String = "chatrelay", port: Int = 5432) {
        var d = dataDir
        while d.count > 1 && d.hasSuffix("/") { d.removeLast() }
        if !d.hasPrefix("/") {
            // Children get absolute paths only: their working directory may not be ours to read.
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            if getcwd(&buf, buf.count) != nil {
                let cwd = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                d = d == "." ? cwd : join(cwd, d.hasPrefix("./") ? String(d.dropFirst(2)) : d)
            }
        }
        self.dataDir = d
        self.databaseName = databaseName
        self.port = port
    }

    /// The libpq conninfo for the cluster's database.
    public var conninfo: String {
        "host=\(quoteConninfo(socketDir)) port=\(port) user=postgres dbname=\(quoteConninfo(databaseName))"
    }

    /// Creates the cluster if needed, starts it (or reuses one that is already running on this data),
    /// creates the database if missing, and returns the conninfo string.
    public func start() throws(StorageStartupError) -> String {
        let bin = try Self.findBinaries()
        let runAs = try Self.runAsUser()
        try prepareFolders(runAs: runAs)

        if !fileExists(join(dataPath, "PG_VERSION")) {
            let r = try run(runAs, join(bin, "initdb"),
                            ["-D", dataPath, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-instructions"])
            guard r.status == 0 else {
                throw StorageStartupError("initdb failed (exit \(r.status)): \(r.lastLine)")
            }
        }

        if try !isRunning(bin: bin, runAs: runAs) {
            removeStalePidFile()
            let options = "-c listen_addresses='' -c unix_socket_directories=\(shellQuote(socketDir)) -p \(port)"
            let r = try run(runAs, join(bin, "pg_ctl"),
                            ["-D", dataPath, "-l", logPath, "-w", "-t", "60", "-o", options, "start"])
            guard r.status == 0 else {
                throw StorageStartupError("pg_ctl start failed (exit \(r.status)): \(r.lastLine); see \(logPath)")
            }
        }

        let admin = "host=\(quoteConninfo(socketDir)) port=\(port) user=postgres dbname=postgres"
        let name = databaseName.replacingOccurrences(of: "'", with: "''")
        switch PGBlocking.execute(conninfo: admin, "SELECT 1 FROM pg_database WHERE datname = '\(name)'") {
        case .failure(let e):
            throw StorageStartupError("embedded PostgreSQL started but is not reachable: \(e)")
        case .success(let r) where r.rows.isEmpty:
            let ident = "\"" + databaseName.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            if case .failure(let e) = PGBlocking.execute(conninfo: admin, "CREATE DATABASE \(ident)"),
               e.sqlState != "42P04" {  // 42P04: another instance created it first
                throw StorageStartupError("cannot create database \(databaseName): \(e)")
            }
        case .success:
            break
        }
        return conninfo
    }

    /// Stops the server (`pg_ctl -m fast|immediate -w stop`). Stopping a stopped server is not an error.
    public func stop(mode: StopMode = .fast) throws(StorageStartupError) {
        let bin = try Self.findBinaries()
        let runAs = try Self.runAsUser()
        guard try isRunning(bin: bin, runAs: runAs) else { return }
        let r = try run(runAs, join(bin, "pg_ctl"), ["-D", dataPath, "-m", mode.rawValue, "-w", "-t", "60", "stop"])
        guard r.status == 0 else { throw StorageStartupError("pg_ctl stop failed (exit \(r.status)): \(r.lastLine)") }
    }

    /// True when a postmaster serves this data folder now (a server's, or one left running): a
    /// short-lived command that finds it running uses it and leaves it running.
    public func isRunning() throws(StorageStartupError) -> Bool {
        guard fileExists(join(dataPath, "PG_VERSION")) else { return false }
        return try isRunning(bin: try Self.findBinaries(), runAs: try Self.runAsUser())
    }

    // MARK: Binaries and user

    /// The PostgreSQL server bin folder: `pg_config --bindir`, else the newest `/usr/lib/postgresql/<ver>/bin`.
    public static func findBinaries() throws(StorageStartupError) -> String {
        func usable(_ dir: String) -> Bool {
            ["initdb", "pg_ctl", "postgres"].allSatisfy { access(join(dir, $0), X_OK) == 0 }
        }
        if case .success(let out) = Subprocess.run("pg_config", ["--bindir"], searchPath: true), out.status == 0 {
            let dir = out.output.split(whereSeparator: { $0 == "\n" }).first.map(String.init) ?? ""
            // libpq-dev's pg_config names the server's bin folder even when the server is not installed.
            if !dir.isEmpty && usable(dir) { return dir }
        }
        var versions: [(Int, String)] = []
        if let d = opendir("/usr/lib/postgresql") {
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if let v = Int(name.split(separator: ".").first ?? "") {
                    let bin = "/usr/lib/postgresql/\(name)/bin"
                    if usable(bin) { versions.append((v, bin)) }
                }
            }
            closedir(d)
        }
        if let newest = versions.max(by: { $0.0 < $1.0 }) { return newest.1 }
        throw StorageStartupError("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found via pg_config or in "
            + "/usr/lib/postgresql/*/bin: install them with `apt-get install postgresql` or set DATABASE_URL")
    }

    /// The user to run initdb/postgres as: nil for ourselves, the `postgres` user when we are root.
    struct RunAs: Sendable {
        let uid: uid_t
        let gid: gid_t
        let runuser: String
    }

    static func runAsUser() throws(StorageStartupError) -> RunAs? {
        guard geteuid() == 0 else { return nil }
        guard let pw = getpwnam("postgres") else {
            throw StorageStartupError("running as root, and PostgreSQL refuses to run as root; the `postgres` system "
                + "user it would run as does not exist: install postgresql (which creates it), run as another user, "
                + "or set DATABASE_URL")
        }
        let candidates: [String] = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser", "/bin/runuser"]
        guard let runuser = candidates.first(where: { access($0, X_OK) == 0 }) else {
            throw StorageStartupError("running as root, but `runuser` (util-linux) is missing, so PostgreSQL cannot "
                + "be started as the postgres user: install util-linux or set DATABASE_URL")
        }
        return RunAs(uid: pw.pointee.pw_uid, gid: pw.pointee.pw_gid, runuser: runuser)
    }

    private func run(_ runAs: RunAs?, _ tool: String, _ args: [String]) throws(StorageStartupError) -> SubprocessOutput {
        let r: Result<SubprocessOutput, StorageStartupError>
        if let runAs {
            r = Subprocess.run(runAs.runuser, ["-u", "postgres", "--", tool] + args)
        } else {
            r = Subprocess.run(tool, args)
        }
        return try r.get()
    }

    // MARK: Folders

    private func prepareFolders(runAs: RunAs?) throws(StorageStartupError) {
        // The data dir may hold secrets; as root it is created 0711 so the postgres user can pass
        // through to pg/ without listing it.
        try makeDirectories(dataDir, mode: runAs == nil ? 0o700 : 0o711)
        try makeDirectories(root, mode: 0o700)
        try makeDirectories(socketDir, mode: 0o700)
        let socketPath = join(socketDir, ".s.PGSQL.\(port)")
        if socketPath.utf8.count >= 108 {  // sizeof(sun_path)
            throw StorageStartupError("the socket path \(socketPath) is longer than 107 bytes; use a shorter CHAT_DATA_DIR")
        }
        guard let runAs else { return }
        for dir in [root, socketDir] where chown(dir, runAs.uid, runAs.gid) != 0 {
            throw StorageStartupError("cannot give \(dir) to the postgres user: \(errnoText())")
        }
        // Every ancestor must be traversable by the postgres user, or initdb fails with a vague error.
        var path = ""
        for part in dataDir.split(separator: "/") {
            path += "/" + part
            var st = stat()
            guard stat(path, &st) == 0 else { throw StorageStartupError("cannot stat \(path): \(errnoText())") }
            let mode = st.st_mode
            let ok = st.st_uid == runAs.uid ? mode & S_IXUSR != 0
                : st.st_gid == runAs.gid ? mode & S_IXGRP != 0
                : mode & S_IXOTH != 0
            if !ok {
                throw StorageStartupError("the postgres user cannot traverse \(path) (mode \(String(mode & 0o777, radix: 8))), "
                    + "so it cannot reach \(root): run `chmod o+x \(path)`, choose another CHAT_DATA_DIR, or set DATABASE_URL")
            }
        }
    }

    private func makeDirectories(_ path: String, mode: mode_t) throws(StorageStartupError) {
        var current = ""
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, current == path ? mode : 0o755) != 0 && errno != EEXIST {
                throw StorageStartupError("cannot create \(current): \(errnoText())")
            }
        }
    }

    // MARK: Running server detection

    /// True when a postmaster for this data folder is alive (e.g. left by an earlier run that crashed).
    private func isRunning(bin: String, runAs: RunAs?) throws(StorageStartupError) -> Bool {
        guard let pid = postmasterPID() else { return false }
        guard postmasterIsOurs(pid) else { return false }
        let r = try run(runAs, join(bin, "pg_ctl"), ["-D", dataPath, "status"])
        return r.status == 0
    }

    private func postmasterPID() -> pid_t? {
        guard let text = readSmallFile(join(dataPath, "postmaster.pid")),
              let first = text.split(separator: "\n").first, let pid = Int32(first.trimmingSpaces) else { return nil }
        return pid
    }

    /// The pid is alive and its working directory is our data folder (postgres chdirs into PGDATA);
    /// after a crash the pid may have been reused by an unrelated process.
    private func postmasterIsOurs(_ pid: pid_t) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/\(pid)/cwd", &buf, buf.count - 1)
        guard n > 0 else { return false }
        let cwd = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return cwd == realPath(dataPath)
    }

    /// A postmaster.pid whose process is gone (or is someone else) would stop the next start with
    /// "lock file already exists"; remove it and the socket lock beside it.
    private func removeStalePidFile() {
        guard fileExists(join(dataPath, "postmaster.pid")) else { return }
        unlink(join(dataPath, "postmaster.pid"))
        unlink(join(socketDir, ".s.PGSQL.\(port).lock"))
    }
}

// MARK: Small helpers (no Foundation)

func join(_ a: String, _ b: String) -> String { a.hasSuffix("/") ? a + b : a + "/" + b }

func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

func realPath(_ path: String) -> String {
    guard let p = realpath(path, nil) else { return path }
    defer { free(p) }
    return String(cString: p)
}

func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while bytes.count < 1 << 20 {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 { bytes.append(contentsOf: buf[0..<n]); continue }
        if n < 0 && errno == EINTR { continue }
        break
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// conninfo value quoting: single quotes, with `\` and `'` escaped.
func quoteConninfo(_ s: String) -> String {
    var out = "'"
    for c in s {
        if c == "\\" || c == "'" { out.append("\\") }
        out.append(c)
    }
    return out + "'"
}

/// pg_ctl hands `-o` to /bin/sh, so paths inside it are single-quoted for the shell.
func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

extension Substring {
    var trimmingSpaces: Substring {
        var t = self
        while let f = t.first, f == " " || f == "\t" || f == "\r" { t.removeFirst() }
        while let l = t.last, l == " " || l == "\t" || l == "\r" { t.removeLast() }
        return t
    }
}

extension String {
    /// Foundation-free replacement of every occurrence of `target`.
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }
}
