import Providers
import Storage

/// Everything the operator can set (README.md, Configuration), parsed and checked once at start-up.
public struct Config: Sendable {
    public enum DisconnectPolicy: String, Sendable { case `continue`, cancel }
    public enum LogFormat: String, Sendable { case json, text }
    public enum LogLevel: String, Sendable, Comparable {
        case debug, info, warn, error
        var rank: Int {
            switch self {
            case .debug: return 0
            case .info: return 1
            case .warn: return 2
            case .error: return 3
            }
        }
        public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
        /// The level as it appears in log lines.
        var name: StaticString {
            switch self {
            case .debug: return "debug"
            case .info: return "info"
            case .warn: return "warn"
            case .error: return "error"
            }
        }
    }

    public var host = "0.0.0.0"
    public var port = 8080
    public var workers = 1
    public var databaseURL: String?
    public var dataDir = "./.chatrelay"
    /// `CHAT_JOURNAL_DIR`: where answers wait while the database is away (default
    /// `<data dir>/journal`); nil (`off`): they wait in memory only.
    public var journalDir: String? = "./.chatrelay/journal"
    public var dbPool = 4
    public var apiKeys: [String] = []
    /// `CHAT_ADMIN_KEYS`: bearer keys of the admin API (/admin/v1); empty: the admin API is off.
    public var adminKeys: [String] = []
    public var corsOrigins: [String] = []
    /// Bearer token /metrics requires; nil: /metrics is open (keep it on a private network then).
    public var metricsToken: String?
    public var openAIKey: String?
    public var anthropicKey: String?
    public var googleKey: String?
    public var openAIBaseURL = "https://api.openai.com/v1"
    public var anthropicBaseURL = "https://api.anthropic.com"
    public var geminiBaseURL = "https://generativelanguage.googleapis.com/v1beta"
    public var anthropicVersion = "2026-10-21"
    public var defaultModel: String?
    public var maxTokens = 1024
    public var temperature: Double?
    public var maxBodyBytes = 1_048_576
    public var headerTimeoutSeconds = 10.0
    public var idleTimeoutSeconds = 60.0
    public var maxConnections = 65536
    public var ssePingSeconds = 15.0
    /// How often each worker saves the text of its answers in progress for resuming clients; 0: never.
    public var progressIntervalMillis = 250
    public var onDisconnect = DisconnectPolicy.continue
    /// `CHAT_MAX_MODELS_PER_TURN`: how many models one `/api/v1/chat` turn may ask at once.
    public var maxModelsPerTurn = 4
    /// `CHAT_CACHE_MAX_BYTES`: the response cache's size cap (answers' text); the oldest go first.
    public var cacheMaxBytes = 256 << 20
    /// `CHAT_CACHE_MEMORY_BYTES`: per worker, recent cache entries kept in memory (no database
    /// round trip for a repeat) until they expire.
    public var cacheMemoryBytes = 8 << 20
    /// `CHAT_HISTORY_MAX_MESSAGES` and `CHAT_HISTORY_MAX_CHARS`: how much of a stored conversation a
    /// turn sends upstream (the newest messages that fit both).
    public var historyMaxMessages = HistoryBudget.standard.messages
    public var historyMaxCharacters = HistoryBudget.standard.characters
    public var drainSeconds = 30.0
    public var upstreamConnectTimeoutSeconds = 10.0
    public var upstreamFirstTokenTimeoutSeconds = 300.0
    public var upstreamIdleTimeoutSeconds = 120.0
    /// `CHAT_MODELS_FILE`: the model catalog; nil reads `./models.yaml` when it exists.
    public var modelsFile: String?
    public var logLevel = LogLevel.info
    public var logFormat = LogFormat.json

    public init() {}

    /// The provider settings the built-in catalog is made of.
    public var providerConfig: ProviderConfig {
        ProviderConfig(openAIKey: openAIKey, anthropicKey: anthropicKey, googleKey: googleKey,
                       openAIBaseURL: openAIBaseURL, anthropicBaseURL: anthropicBaseURL, geminiBaseURL: geminiBaseURL,
                       anthropicVersion: anthropicVersion, defaultMaxTokens: maxTokens, defaultTemperature: temperature)
    }

    /// The model used when a request names none: the configured default, else the built-in mock
    /// when no provider key is set, else the first configured provider's usual model.
    public var effectiveDefaultModel: String {
        if let m = defaultModel { return m }
        if openAIKey != nil { return "gpt-5.4-mini" }
        if anthropicKey != nil { return "claude-sonnet-4-6" }
        if googleKey != nil { return "gemini-2.5-flash" }
        return "mock-echo"
    }
}

/// A setting that could not be accepted: one clear line naming the setting, the value and what is allowed.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let setting: String
    public let value: String
    public let allowed: String
    public var description: String { "invalid \(setting)=\"\(value)\": \(allowed)" }
}
