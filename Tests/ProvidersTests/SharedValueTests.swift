import Providers
import Testing

/// Routed models, deployments and catalog entries keep their fields in one shared box
/// (Sources/Providers/Catalog/SharedValue.swift): a copy is one reference, and a setter changes
/// only the copy it is called on.
@Suite struct SharedValueTests {
    @Test func copiesAreOneReference() {
        #expect(MemoryLayout<RoutedModel>.size == MemoryLayout<Int>.size)
        #expect(MemoryLayout<Deployment>.size == MemoryLayout<Int>.size)
        #expect(MemoryLayout<CatalogModel>.size == MemoryLayout<Int>.size)
    }

    @Test func aSetterChangesOnlyItsOwnCopy() {
        let d = Deployment(id: "d", kind: .openai, baseURL: "https://example.invalid")
        let entry = CatalogModel(name: "m", deployments: [d])
        let a = RoutedModel(name: "m", deployment: d, model: "up", entry: entry)
        var b = a
        b.model = "other"
        b.deployment.id = "e"
        b.deployment.timeouts.idleMs = 5
        b.defaults.maxTokens = 7
        b.entry?.listed = false
        #expect(a.model == "up" && a.deployment.id == "d" && a.deployment.timeouts.idleMs == nil)
        #expect(a.defaults.maxTokens == nil && a.entry?.listed == true && d.id == "d")
        #expect(b.name == "m" && b.model == "other" && b.deployment.id == "e" && b.deployment.timeouts.idleMs == 5)
        #expect(b.defaults.maxTokens == 7 && b.entry?.listed == false)
        // The live state stays shared: it is a reference on purpose.
        #expect(a.deployment.health === b.deployment.health)
    }
}
