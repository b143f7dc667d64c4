import Providers
import Yams

/// The checks behind `CatalogFile`: one pass over the YAML tree that builds the catalog or
/// throws the first problem found, in file order.
struct CatalogReader {
    let file: String
    let context: CatalogFile.Context

    static let topFields: Set<String> = ["models", "default_model"]
    static let modelFields: Set<String> = [
        "name", "deployments", "max_tokens", "temperature", "system", "fallbacks", "retry", "on_midstream_failure", "hedge_after_ms",
        "routing", "cache_ttl_s", "context_tokens",
    ]
    static let deploymentFields: Set<String> = [
        "id", "provider", "base_url", "api_key_env", "optional", "model", "weight", "max_concurrent", "timeouts", "headers",
        "price", "api_version", "include_usage", "breaker", "rpm", "tpm",
    ]

    func read(_ root: Node, version: Int) throws(CatalogLoadError) -> ModelCatalog {
        let top = try YAMLFields(root, path: "", file: file, allowed: CatalogReader.topFields)
        guard let entries = try top.sequence("models", required: true), !entries.isEmpty else {
            throw top.error("models", "must list at least one model")
        }
        var models: [CatalogModel] = []
        var names: [String: Int] = [:]
        var deploymentIDs: [String: Int] = [:]
        for (i, entry) in entries.enumerated() {
            let model = try readModel(entry, path: "models[\(i)]", deploymentIDs: &deploymentIDs)
            if let first = names[model.name] {
                throw CatalogLoadError(file: file, line: model.line, field: "models[\(i)].name",
                                       message: "'\(model.name)' is already defined on line \(first)")
            }
            names[model.name] = model.line
            models.append(model)
        }
        let defaultModel = try top.string("default_model")
        let catalog = ModelCatalog(models: models, source: file, version: version, defaultModel: defaultModel)
        for (i, m) in models.enumerated() {
            for (j, fallback) in m.resilience.fallbacks.enumerated() where fallback == m.name || catalog.lookup(fallback) == nil {
                let f = try YAMLFields(entries[i], path: "models[\(i)]", file: file, allowed: CatalogReader.modelFields)
                let node = f.value("fallbacks")?.sequence.map(Array.init)?[j]
                throw f.error("fallbacks", fallback == m.name ? "'\(fallback)' is the model itself" : "'\(fallback)' is not a model in this file",
                              at: node)
            }
        }
        if let d = defaultModel, catalog.lookup(d) == nil {
            throw top.error("default_model", "'\(d)' is not a model in this file")
        }
        return catalog
    }

    func readModel(_ node: Node, path: String, deploymentIDs: inout [String: Int]) throws(CatalogLoadError) -> CatalogModel {
        let f = try YAMLFields(node, path: path, file: file, allowed: CatalogReader.modelFields)
        guard let name = try f.string("name", required: true) else { throw f.error("name", "is required") }
        let star = name.utf8.firstIndex(of: UInt8(ascii: "*"))
        let bare = star == nil ? name : String(name.dropLast())
        guard name.utf8.count <= ModelNames.maxBytes, bare.utf8.allSatisfy(ModelNames.isPublicNameByte),
              star == nil || (name.hasSuffix("*") && !bare.isEmpty && !bare.contains("*")) else {
            throw f.error("name", "'\(name)' must be letters, digits and -._/:@+ (at most \(ModelNames.maxBytes)), with an optional * at the end")
        }
        let defaults = ModelDefaults(maxTokens: try f.int("max_tokens", 1...1_000_000),
                                     temperature: try f.number("temperature", 0...2), system: try f.string("system"),
                                     cacheTTLSeconds: try f.int("cache_ttl_s", 1...2_592_000),
                                     contextTokens: try f.int("context_tokens", 1_000...100_000_000))
        guard let list = try f.sequence("deployments", required: true), !list.isEmpty else {
            throw f.error("deployments", "must list at least one deployment")
        }
        var deployments: [Deployment] = []
        for (j, d) in list.enumerated() {
            let dep = try readDeployment(d, path: "\(path).deployments[\(j)]", wildcard: star != nil)
            if let first = deploymentIDs[dep.id] {
                throw CatalogLoadError(file: file, line: dep.line, field: "\(path).deployments[\(j)].id",
                                       message: "'\(dep.id)' is already used on line \(first); deployment ids must be unique")
            }
            deploymentIDs[dep.id] = dep.line
            deployments.append(dep)
        }
        if !deployments.contains(where: { $0.weight > 0 }) {
            throw f.error("deployments", "at least one deployment needs a weight above 0")
        }
        return CatalogModel(name: name, deployments: deployments, defaults: defaults, resilience: try readResilience(f), line: f.line)
    }

    func readResilience(_ f: YAMLFields) throws(CatalogLoadError) -> ModelResilience {
        var r = ModelResilience()
        for (i, node) in (try f.sequence("fallbacks", required: false) ?? []).enumerated() {
            guard case .scalar(let s) = node, !s.string.isEmpty, s.string.utf8.allSatisfy(ModelNames.isPublicNameByte) else {
                throw CatalogLoadError(file: file, line: node.mark?.line ?? f.line, field: f.field("fallbacks[\(i)]"), message: "must be a model name")
            }
            r.fallbacks.append(s.string)
        }
        if let policy = try f.string("on_midstream_failure") {
            guard policy == "error" || policy == "restart" else { throw f.error("on_midstream_failure", "'\(policy)' is not error or restart") }
            r.restartMidstream = policy == "restart"
        }
        r.hedgeAfterMs = try f.int("hedge_after_ms", 1...600_000)
        if let routing = try f.string("routing") {
            guard routing == "weighted" || routing == "ordered" else { throw f.error("routing", "'\(routing)' is not weighted or ordered") }
            r.ordered = routing == "ordered"
        }
        if let node = f.value("retry") {
            let t = try YAMLFields(node, path: f.field("retry"), file: file, allowed: [
                "max_attempts", "retries_per_deployment", "budget_s", "backoff_base_ms", "backoff_max_ms", "max_retry_after_s",
            ])
            if let n = try t.int("max_attempts", 1...100) { r.retry.maxAttempts = n }
            if let n = try t.int("retries_per_deployment", 0...20) { r.retry.retriesPerDeployment = n }
            if let s = try t.number("budget_s", 0.001...3_600) { r.retry.budgetMs = Int(s * 1000) }
            if let n = try t.int("backoff_base_ms", 0...600_000) { r.retry.backoffBaseMs = n }
            if let n = try t.int("backoff_max_ms", 0...3_600_000) { r.retry.backoffMaxMs = n }
            if let s = try t.number("max_retry_after_s", 0...3_600) { r.retry.maxRetryAfterMs = Int(s * 1000) }
        }
        return r
    }

    func readBreaker(_ f: YAMLFields) throws(CatalogLoadError) -> BreakerPolicy {
        var p = BreakerPolicy()
        guard let node = f.value("breaker") else { return p }
        let t = try YAMLFields(node, path: f.field("breaker"), file: file, allowed: [
            "consecutive_failures", "error_rate", "window_s", "min_requests", "cooldown_s",
        ])
        if let n = try t.int("consecutive_failures", 1...1_000_000) { p.consecutiveFailures = n }
        if let x = try t.number("error_rate", 0.01...1) { p.errorRate = x }
        if let s = try t.number("window_s", 0.1...86_400) { p.windowMs = Int(s * 1000) }
        if let n = try t.int("min_requests", 1...1_000_000) { p.minRequests = n }
        if let s = try t.number("cooldown_s", 0.01...86_400) { p.cooldownMs = Int(s * 1000) }
        return p
    }

    func readDeployment(_ node: Node, path: String, wildcard: Bool) throws(CatalogLoadError) -> Deployment {
        let f = try YAMLFields(node, path: path, file: file, allowed: CatalogReader.deploymentFields)
        guard let id = try f.string("id", required: true) else { throw f.error("id", "is required") }
        guard id.utf8.count <= 128, id.utf8.allSatisfy(CatalogReader.isIDByte) else {
            throw f.error("id", "'\(id)' must be letters, digits and -._ (at most 128)")
        }
        guard let providerName = try f.string("provider", required: true) else { throw f.error("provider", "is required") }
        guard let kind = DeploymentKind(rawValue: providerName) else {
            throw f.error("provider", "'\(providerName)' is not one of \(DeploymentKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var d = Deployment(id: id, kind: kind, baseURL: "", line: f.line)
        try readEndpoint(f, kind: kind, into: &d)
        try readKey(f, kind: kind, into: &d)
        if let m = try f.string("model") {
            guard ModelNames.isValidUpstreamID(m, for: kind) else {
                throw f.error("model", "'\(m)' is not a model id \(kind == .gemini ? "Gemini accepts (letters, digits, -._)" : "(letters, digits, -._/:@+)")")
            }
            if kind == .mock, !MockModel.isModelName(m) {
                throw f.error("model", "'\(m)' is not a built-in mock model (mock-echo, mock-tokens-N)")
            }
            d.model = m
        }
        d.weight = try f.int("weight", 0...1_000) ?? 1
        d.maxConcurrent = try f.int("max_concurrent", 1...10_000_000)
        d.rpm = try f.int("rpm", 1...100_000_000)
        d.tpm = try f.int("tpm", 1...10_000_000_000)
        d.timeouts = try readTimeouts(f)
        d.headers = try readHeaders(f)
        d.price = try readPrice(f)
        d.includeUsage = try f.bool("include_usage") ?? true
        d.health = DeploymentHealth(policy: try readBreaker(f))
        if f.value("include_usage") != nil, kind.wire != .openai {
            throw f.error("include_usage", "applies only to openai, azure-openai and openai-compatible deployments")
        }
        return d
    }

    func readEndpoint(_ f: YAMLFields, kind: DeploymentKind, into d: inout Deployment) throws(CatalogLoadError) {
        let base = try f.string("base_url")
        switch kind {
        case .mock:
            if base != nil { throw f.error("base_url", "the mock provider is served in process and takes no base_url") }
        case .azureOpenAI, .openAICompatible:
            guard base != nil else {
                throw f.error("base_url", kind == .azureOpenAI
                    ? "is required for azure-openai (the deployment's URL, https://RESOURCE.openai.azure.com/openai/deployments/NAME)"
                    : "is required for openai-compatible (the server's URL up to /v1)")
            }
        case .openai, .anthropic, .gemini:
            break
        }
        if let base {
            guard CatalogReader.isValidBaseURL(base) else {
                throw f.error("base_url", "'\(base)' is not an http:// or https:// URL with a host (and no query, fragment or spaces)")
            }
            d.baseURL = base.hasSuffix("/") ? String(base.dropLast()) : base
        } else {
            d.baseURL = kind.defaultBaseURL ?? ""
        }
        let version = try f.string("api_version")
        switch kind {
        case .azureOpenAI:
            guard let version else { throw f.error("api_version", "is required for azure-openai (for example 2024-10-21)") }
            guard version.utf8.allSatisfy(CatalogReader.isIDByte) else { throw f.error("api_version", "'\(version)' must be letters, digits and -._") }
            d.apiVersion = version
        case .anthropic:
            if let version, version.utf8.count != 10 || version.split(separator: "-").count != 3 {
                throw f.error("api_version", "'\(version)' must be a date like 2026-10-21 (the anthropic-version header)")
            }
            d.apiVersion = version ?? context.anthropicVersion
        case .openai, .gemini, .openAICompatible, .mock:
            if version != nil { throw f.error("api_version", "applies only to azure-openai and anthropic deployments") }
        }
    }

    func readKey(_ f: YAMLFields, kind: DeploymentKind, into d: inout Deployment) throws(CatalogLoadError) {
        let optional = try f.bool("optional") ?? false
        guard let variable = try f.string("api_key_env") else {
            switch kind {
            case .openai, .anthropic, .gemini, .azureOpenAI:
                throw f.error("api_key_env", "is required for \(kind.rawValue) (the environment variable holding the key)")
            case .openAICompatible, .mock:
                if optional { throw f.error("optional", "applies only to deployments with an api_key_env") }
                return
            }
        }
        if kind == .mock { throw f.error("api_key_env", "the mock provider takes no key") }
        guard CatalogReader.isEnvironmentName(variable) else {
            throw f.error("api_key_env", "'\(variable)' is not an environment variable name (A-Z, 0-9, _)")
        }
        d.apiKeyEnv = variable
        let value = context.environment[variable].map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        if value.isEmpty {
            guard optional else {
                throw f.error("api_key_env", "\(variable) is not set (set it, or add `optional: true` to list the model as unavailable until it is)")
            }
            d.apiKey = nil
        } else {
            guard value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) else {
                throw f.error("api_key_env", "\(variable) holds control characters")
            }
            d.apiKey = value
        }
    }

    func readTimeouts(_ f: YAMLFields) throws(CatalogLoadError) -> DeploymentTimeouts {
        guard let node = f.value("timeouts") else { return DeploymentTimeouts() }
        let t = try YAMLFields(node, path: f.field("timeouts"), file: file, allowed: ["connect_s", "first_token_s", "idle_s"])
        func ms(_ name: String) throws(CatalogLoadError) -> Int? {
            guard let s = try t.number(name, 0.001...86_400) else { return nil }
            return max(1, Int((s * 1000).rounded()))
        }
        return DeploymentTimeouts(connectMs: try ms("connect_s"), firstTokenMs: try ms("first_token_s"), idleMs: try ms("idle_s"))
    }

    /// Headers the transport owns, or that would let a file override how the body is framed.
    static let reservedHeaders: Set<String> = ["host", "content-length", "content-type", "transfer-encoding", "connection"]

    func readHeaders(_ f: YAMLFields) throws(CatalogLoadError) -> [(String, String)] {
        guard let node = f.value("headers") else { return [] }
        guard let m = node.mapping else { throw f.error("headers", "must be a mapping of header: value", at: node) }
        var out: [(String, String)] = []
        for (k, v) in m {
            guard let name = k.string, !name.isEmpty, name.utf8.allSatisfy(CatalogReader.isTokenByte) else {
                throw CatalogLoadError(file: file, line: k.mark?.line ?? f.line, field: f.field("headers"),
                                       message: "'\(k.string ?? "?")' is not a header name")
            }
            guard !CatalogReader.reservedHeaders.contains(name.lowercased()) else {
                throw CatalogLoadError(file: file, line: k.mark?.line ?? f.line, field: f.field("headers.\(name)"),
                                       message: "is set by ChatRelay itself")
            }
            guard case .scalar(let s) = v, s.string.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) else {
                throw CatalogLoadError(file: file, line: v.mark?.line ?? f.line, field: f.field("headers.\(name)"),
                                       message: "must be a one-line string")
            }
            out.append((name, s.string))
        }
        return out
    }

    func readPrice(_ f: YAMLFields) throws(CatalogLoadError) -> Price? {
        guard let node = f.value("price") else { return nil }
        let p = try YAMLFields(node, path: f.field("price"), file: file, allowed: ["input_per_mtok", "output_per_mtok"])
        guard let input = try p.number("input_per_mtok", 0...1_000_000) else { throw p.error("input_per_mtok", "is required") }
        guard let output = try p.number("output_per_mtok", 0...1_000_000) else { throw p.error("output_per_mtok", "is required") }
        return Price(inputPerMTok: input, outputPerMTok: output)
    }

    static func isIDByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    static func isEnvironmentName(_ s: String) -> Bool {
        guard let first = s.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return s.utf8.allSatisfy { ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") }
    }

    /// RFC 9110 token characters.
    static func isTokenByte(_ b: UInt8) -> Bool {
        if isIDByte(b) { return true }
        return "!#$%&'*+^`|~".utf8.contains(b)
    }

    static func isValidBaseURL(_ s: String) -> Bool {
        let rest: Substring
        if s.hasPrefix("https://") { rest = s.dropFirst(8) } else if s.hasPrefix("http://") { rest = s.dropFirst(7) } else { return false }
        let host = rest.prefix { $0 != "/" }.split(separator: "@").last ?? ""
        guard !host.isEmpty, !host.hasPrefix(":") else { return false }
        return s.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }
    }
}
