/// Builds a `Config` from, in rising precedence: defaults, a `.env` file in the working folder,
/// the real environment, and command-line flags.
public enum ConfigLoader {
    public static let usage = """
    usage: chatrelay [--host H] [--port P] [--workers N] [--data-dir DIR] [--database-url URL]
                     [--log-level L] [--log-format json|text] [--models-file FILE]
           chatrelay --check-models [FILE]   validate the model catalog and exit (0 when it loads)
           chatrelay keys create|list|revoke|rotate ...   manage API keys in the database (chatrelay keys --help)
    Every setting is also an environment variable; see the README's configuration table.
    Secrets (CHAT_API_KEYS, CHAT_ADMIN_KEYS, CHAT_METRICS_TOKEN, provider keys) are set only in the
    environment or .env, never as flags, so they do not show in the process list. CHAT_METRICS_TOKEN,
    when set, is the bearer token GET /metrics requires (visible ASCII, no spaces, 16 to 512 characters).
    CHAT_ADMIN_KEYS (comma-separated, each 16 to 512 visible ASCII characters) turns on the admin API
    (/admin/v1/keys); unset, it answers 404.
    """

    /// Flags and the variables they stand for.
    static let flags: [String: String] = [
        "--host": "HOST", "--port": "PORT", "--workers": "CHAT_WORKERS", "--data-dir": "CHAT_DATA_DIR",
        "--database-url": "DATABASE_URL", "--log-level": "LOG_LEVEL", "--log-format": "LOG_FORMAT",
        "--models-file": "CHAT_MODELS_FILE",
    ]

    public static func load(arguments: [String], environment: [String: String], dotEnv: String?) throws(ConfigError) -> Config {
        var vars: [String: String] = [:]
        if let dotEnv { for (k, v) in parseDotEnv(dotEnv) { vars[k] = v } }
        for (k, v) in environment { vars[k] = v }
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            var name = arg
            var inlineValue: String?
            if let eq = arg.firstIndex(of: "=") {
                name = String(arg[..<eq])
                inlineValue = String(arg[arg.index(after: eq)...])
            }
            guard let key = flags[name] else {
                throw ConfigError(setting: "argument", value: arg, allowed: "one of \(flags.keys.sorted().joined(separator: ", "))")
            }
            if let inlineValue {
                vars[key] = inlineValue
            } else {
                guard i + 1 < arguments.count else { throw ConfigError(setting: name, value: "", allowed: "a value is required") }
                vars[key] = arguments[i + 1]
                i += 1
            }
            i += 1
        }
        return try build(vars)
    }

    /// `KEY=value` lines; `#` comments, `export ` prefixes and matching quotes are accepted.
    public static func parseDotEnv(_ text: String) -> [(String, String)] {
        var out: [(String, String)] = []
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            var line = raw.drop { $0 == " " || $0 == "\t" }
            if line.isEmpty || line.first == "#" { continue }
            if line.hasPrefix("export ") { line = line.dropFirst(7) }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingSpaces
            var value = line[line.index(after: eq)...].trimmingSpaces
            if value.count >= 2, let f = value.first, f == "\"" || f == "'", value.last == f {
                value = String(value.dropFirst().dropLast())
            }
            out.append((key, value))
        }
        return out
    }

    static func build(_ v: [String: String]) throws(ConfigError) -> Config {
        var c = Config()
        func str(_ k: String) -> String? {
            guard let s = v[k]?.trimmingSpaces, !s.isEmpty else { return nil }
            return s
        }
        func int(_ k: String, _ range: ClosedRange<Int>) throws(ConfigError) -> Int? {
            guard let s = str(k) else { return nil }
            guard let n = Int(s), range.contains(n) else {
                throw ConfigError(setting: k, value: s, allowed: "an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return n
        }
        func seconds(_ k: String) throws(ConfigError) -> Double? {
            guard let s = str(k) else { return nil }
            guard let d = Double(s), d > 0, d <= 86_400 else {
                throw ConfigError(setting: k, value: s, allowed: "a number of seconds greater than 0 and at most 86400")
            }
            return d
        }
        func list(_ k: String) -> [String] {
            (str(k) ?? "").split(separator: ",").map { $0.trimmingSpaces }.filter { !$0.isEmpty }
        }
        func url(_ k: String) throws(ConfigError) -> String? {
            guard let s = str(k) else { return nil }
            guard s.hasPrefix("http://") || s.hasPrefix("https://") else {
                throw ConfigError(setting: k, value: s, allowed: "an http:// or https:// URL")
            }
            return s.hasSuffix("/") ? String(s.dropLast()) : s
        }

        if let h = str("HOST") { c.host = h }
        if let p = try int("PORT", 0...65535) { c.port = p }
        if let w = try int("CHAT_WORKERS", 1...256) {
            c.workers = w
        } else {
            c.workers = CPUBudget.detect()
        }
        c.databaseURL = str("DATABASE_URL")
        if let d = str("CHAT_DATA_DIR") { c.dataDir = d }
        switch str("CHAT_JOURNAL_DIR") {
        case "off"?: c.journalDir = nil
        case let d?: c.journalDir = d
        case nil: c.journalDir = c.dataDir + "/journal"
        }
        if let n = try int("CHAT_DB_POOL", 1...256) { c.dbPool = n }
        c.apiKeys = list("CHAT_API_KEYS")
        c.adminKeys = list("CHAT_ADMIN_KEYS")
        for k in c.adminKeys {
            // An admin key mints client keys: long enough not to be guessed, and never also a client key.
            guard (16...512).contains(k.utf8.count), k.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw ConfigError(setting: "CHAT_ADMIN_KEYS", value: "…", allowed: "keys of 16 to 512 visible ASCII characters without spaces")
            }
            if c.apiKeys.contains(k) {
                throw ConfigError(setting: "CHAT_ADMIN_KEYS", value: "…", allowed: "keys that are not also in CHAT_API_KEYS")
            }
        }
        c.corsOrigins = list("CORS_ORIGINS")
        if let t = str("CHAT_METRICS_TOKEN") {
            // It travels in an Authorization header: visible ASCII only; long enough not to be guessed.
            guard (16...512).contains(t.utf8.count), t.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw ConfigError(setting: "CHAT_METRICS_TOKEN", value: "…", allowed: "16 to 512 visible ASCII characters without spaces")
            }
            c.metricsToken = t
        }
        c.openAIKey = str("OPENAI_API_KEY")
        c.anthropicKey = str("ANTHROPIC_API_KEY")
        c.googleKey = str("GOOGLE_API_KEY") ?? str("GEMINI_API_KEY")
        if let u = try url("OPENAI_BASE_URL") { c.openAIBaseURL = u }
        if let u = try url("ANTHROPIC_BASE_URL") { c.anthropicBaseURL = u }
        if let u = try url("GEMINI_BASE_URL") { c.geminiBaseURL = u }
        if let a = str("ANTHROPIC_VERSION") {
            guard a.count == 10, a.split(separator: "-").count == 3 else {
                throw ConfigError(setting: "ANTHROPIC_VERSION", value: a, allowed: "a date like 2026-10-21")
            }
            c.anthropicVersion = a
        }
        c.defaultModel = str("CHAT_DEFAULT_MODEL")
        if let m = try int("MAX_TOKENS", 1...1_000_000) { c.maxTokens = m }
        if let t = str("TEMPERATURE") {
            guard let d = Double(t), d >= 0, d <= 2 else {
                throw ConfigError(setting: "TEMPERATURE", value: t, allowed: "a number from 0 to 2")
            }
            c.temperature = d
        }
        if let b = try int("CHAT_MAX_BODY_BYTES", 1024...1_073_741_824) { c.maxBodyBytes = b }
        if let s = try seconds("CHAT_HEADER_TIMEOUT_S") { c.headerTimeoutSeconds = s }
        if let s = try seconds("CHAT_IDLE_TIMEOUT_S") { c.idleTimeoutSeconds = s }
        if let n = try int("CHAT_MAX_CONNECTIONS", 1...10_000_000) { c.maxConnections = n }
        if let s = try seconds("CHAT_SSE_PING_S") { c.ssePingSeconds = s }
        if let n = try int("CHAT_PROGRESS_INTERVAL_MS", 0...60_000) { c.progressIntervalMillis = n }
        if let n = try int("CHAT_MAX_MODELS_PER_TURN", 1...16) { c.maxModelsPerTurn = n }
        if let n = try int("CHAT_CACHE_MAX_BYTES", 0...(1 << 40)) { c.cacheMaxBytes = n }
        if let n = try int("CHAT_CACHE_MEMORY_BYTES", 0...(1 << 34)) { c.cacheMemoryBytes = n }
        if let n = try int("CHAT_HISTORY_MAX_MESSAGES", 1...1_000_000) { c.historyMaxMessages = n }
        if let n = try int("CHAT_HISTORY_MAX_CHARS", 1_000...1_000_000_000) { c.historyMaxCharacters = n }
        if let p = str("CHAT_ON_DISCONNECT") {
            guard let d = Config.DisconnectPolicy(rawValue: p.lowercased()) else {
                throw ConfigError(setting: "CHAT_ON_DISCONNECT", value: p, allowed: "continue or cancel")
            }
            c.onDisconnect = d
        }
        if let s = try seconds("CHAT_DRAIN_S") { c.drainSeconds = s }
        if let s = try seconds("CHAT_UPSTREAM_CONNECT_TIMEOUT_S") { c.upstreamConnectTimeoutSeconds = s }
        if let s = try seconds("CHAT_UPSTREAM_FIRST_TOKEN_TIMEOUT_S") { c.upstreamFirstTokenTimeoutSeconds = s }
        if let s = try seconds("CHAT_UPSTREAM_IDLE_TIMEOUT_S") { c.upstreamIdleTimeoutSeconds = s }
        c.modelsFile = str("CHAT_MODELS_FILE")
        if let l = str("LOG_LEVEL") {
            guard let lv = Config.LogLevel(rawValue: l.lowercased()) else {
                throw ConfigError(setting: "LOG_LEVEL", value: l, allowed: "debug, info, warn or error")
            }
            c.logLevel = lv
        }
        if let f = str("LOG_FORMAT") {
            guard let lf = Config.LogFormat(rawValue: f.lowercased()) else {
                throw ConfigError(setting: "LOG_FORMAT", value: f, allowed: "json or text")
            }
            c.logFormat = lf
        }
        for o in c.corsOrigins where o != "*" && !(o.hasPrefix("http://") || o.hasPrefix("https://")) {
            throw ConfigError(setting: "CORS_ORIGINS", value: o, allowed: "* or origins like https://app.example.com")
        }
        return c
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    /// Works on UTF-8 bytes: space and tab are ASCII, so the cut never splits a character, and no
    /// grapheme breaking runs (this is on every request's Authorization header).
    var trimmingSpaces: String {
        let u = utf8
        var first = u.startIndex
        while first < u.endIndex && (u[first] == 0x20 || u[first] == 0x09) { first = u.index(after: first) }
        guard first < u.endIndex else { return "" }
        var last = first
        var i = first
        while i < u.endIndex {
            if u[i] != 0x20 && u[i] != 0x09 { last = i }
            i = u.index(after: i)
        }
        return String(self[first...last])
    }
}
