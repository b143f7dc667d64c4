import Catalog
import Providers
import Reactor

/// Where the model catalog comes from, at start-up and on every SIGHUP: `CHAT_MODELS_FILE`, else
/// `./models.yaml` when it exists, else the built-in catalog made from the provider variables.
/// Runs on the main thread, never on a worker's loop (it reads files).
enum CatalogLoading {
    static let defaultPath = "./models.yaml"

    static func path(_ config: Config) -> String? {
        if let p = config.modelsFile { return p }
        return FileSystem.exists(defaultPath) ? defaultPath : nil
    }

    /// Keys are read afresh each time, from `.env` and the environment (the environment wins), so
    /// a key added to `.env` is picked up by the next reload.
    static func load(_ config: Config, version: Int) -> Result<ModelCatalog, CatalogLoadError> {
        guard let path = path(config) else { return .success(BuiltInCatalog.make(config.providerConfig, version: version)) }
        var environment: [String: String] = [:]
        if let dotEnv = Environment.readFile(".env") { for (k, v) in ConfigLoader.parseDotEnv(dotEnv) { environment[k] = v } }
        for (k, v) in Environment.current() { environment[k] = v }
        let context = CatalogFile.Context(environment: environment, anthropicVersion: config.anthropicVersion)
        return CatalogFile.load(path: path, context: context, version: version)
    }
}

/// The catalog in force and how the last load went, for /metrics and the logs.
struct CatalogStatus: Sendable {
    var version: Int
    var source: String
    var models: Int
    var lastReloadSucceeded: Bool
    /// Wall-clock seconds of the last load attempt (start-up counts).
    var lastReloadAt: Double
    var reloadsSucceeded: Int
    var reloadsFailed: Int

    init(loaded catalog: ModelCatalog, at seconds: Double) {
        version = catalog.version
        source = catalog.source
        models = catalog.models.count
        lastReloadSucceeded = true
        lastReloadAt = seconds
        reloadsSucceeded = 0
        reloadsFailed = 0
    }
}
