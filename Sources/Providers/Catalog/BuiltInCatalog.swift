/// The catalog used when there is no `models.yaml`: routing by name prefix, one key and base
/// URL per provider from the environment, exactly as before catalogs existed, so a bare
/// `scripts/run.sh` keeps serving the mock models and any provider whose key is set.
public enum BuiltInCatalog {
    /// The names each provider lists when it has a key (any name its prefix matches works).
    static let listed: [(DeploymentKind, [String])] = [
        (.mock, ["mock-echo", "mock-tokens-20"]),
        (.openai, ["gpt-5.4-mini", "gpt-5.4", "gpt-4.1", "o3"]),
        (.anthropic, ["claude-sonnet-4-6", "claude-opus-4-7", "claude-haiku-4-5"]),
        (.gemini, ["gemini-2.5-flash", "gemini-2.5-pro"]),
    ]

    /// Name patterns per provider; the upstream id is the client's name (`models/` dropped).
    static let patterns: [(DeploymentKind, [String])] = [
        (.mock, ["mock-*"]),
        (.openai, ["gpt-*", "chatgpt-*"] + (0...9).map { "o\($0)*" }),
        (.anthropic, ["claude-*"]),
        (.gemini, ["gemini-*", "models/gemini-*"]),
    ]

    public static func make(_ config: ProviderConfig, version: Int = 1) -> ModelCatalog {
        var models: [CatalogModel] = []
        // One deployment object per provider, so its breaker and stream count are shared by all its names.
        var deployments: [DeploymentKind: Deployment] = [:]
        for kind in [DeploymentKind.mock, .openai, .anthropic, .gemini] { deployments[kind] = deployment(kind, config) }
        for (kind, names) in listed {
            guard let d = deployments[kind] else { continue }
            models += names.map { CatalogModel(name: $0, deployments: [d]) }
        }
        for (kind, names) in patterns {
            guard let d = deployments[kind] else { continue }
            models += names.map { CatalogModel(name: $0, deployments: [d], listed: false) }
        }
        return ModelCatalog(models: models, source: "built-in", version: version)
    }

    static func deployment(_ kind: DeploymentKind, _ c: ProviderConfig) -> Deployment {
        var d = plainDeployment(kind, c)
        d.health = DeploymentHealth(policy: .never)
        return d
    }

    static func plainDeployment(_ kind: DeploymentKind, _ c: ProviderConfig) -> Deployment {
        switch kind {
        case .openai:
            return Deployment(id: "openai", kind: .openai, baseURL: c.openAIBaseURL, apiKeyEnv: "OPENAI_API_KEY", apiKey: c.key(for: .openai))
        case .anthropic:
            return Deployment(id: "anthropic", kind: .anthropic, baseURL: c.anthropicBaseURL, apiKeyEnv: "ANTHROPIC_API_KEY",
                              apiKey: c.key(for: .anthropic), apiVersion: c.anthropicVersion)
        case .gemini:
            return Deployment(id: "gemini", kind: .gemini, baseURL: c.geminiBaseURL, apiKeyEnv: "GOOGLE_API_KEY", apiKey: c.key(for: .gemini))
        case .mock, .azureOpenAI, .openAICompatible:
            return Deployment(id: "mock", kind: .mock, baseURL: "")
        }
    }
}
