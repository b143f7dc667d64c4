import Testing
@testable import HTTP

/// Static routes match by string comparison for canonical paths; every other path still goes
/// through segment binding, so both must agree.
@Suite struct RouterMatchTests {
    private func router() -> Router {
        let r = Router()
        r.add(.get, "/api/v1/health") { _, _, _ in }
        r.add(.get, "/api/v1/conversations/{id}") { _, _, _ in }
        r.add(.post, "/api/v1/conversations") { _, _, _ in }
        r.add(.get, "/") { _, _, _ in }
        return r
    }

    private func kind(_ m: Router.Match) -> String {
        switch m {
        case .found(_, let p): return "found \(p["id"] ?? "-")"
        case .methodNotAllowed(let allow): return "405 \(allow.joined(separator: ","))"
        case .notFound: return "404"
        }
    }

    @Test(arguments: [
        ("/api/v1/health", "found -"), ("/api//v1/health/", "found -"), ("api/v1/health", "found -"),
        ("/api/v1/healthz", "404"), ("/api/v1", "404"), ("/", "found -"), ("//", "found -"),
        ("/api/v1/conversations/abc", "found abc"), ("/api/v1/conversations", "405 POST"),
    ])
    func getMatches(path: String, expected: String) {
        #expect(kind(router().match(method: .get, path: path)) == expected)
    }

    @Test func otherMethodOnStaticRouteIs405() {
        #expect(kind(router().match(method: .post, path: "/api/v1/health")) == "405 GET,HEAD")
        #expect(kind(router().match(method: .head, path: "/api/v1/health")) == "found -")
    }

    @Test func canonicalPaths() {
        #expect(Router.isCanonical("/"))
        #expect(Router.isCanonical("/a/b"))
        #expect(!Router.isCanonical("/a/"))
        #expect(!Router.isCanonical("//a"))
        #expect(!Router.isCanonical("a"))
        #expect(!Router.isCanonical(""))
    }
}
