/// Path parameters captured by `{name}` segments.
public struct PathParameters: Sendable {
    var values: [(String, String)] = []
    public subscript(_ name: String) -> String? { values.first { $0.0 == name }?.1 }
}

/// A request handler: it answers through the responder, now or later (on the loop).
public typealias HTTPHandler = (HTTPRequest, PathParameters, HTTPResponder) -> Void

/// Method + path-pattern routing. An unknown path is 404; a known path with another method is
/// 405 with `Allow`; OPTIONS and HEAD fall through to the handler the application registers.
public final class Router {
    private struct Route {
        let method: HTTPMethod
        let segments: [Substring]
        let handler: HTTPHandler
    }

    private var routes: [Route] = []
    /// Runs before routing when set (CORS pre-flights, auth); returning true means "handled".
    public var preflight: ((HTTPRequest, HTTPResponder) -> Bool)?

    public init() {}

    public func add(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping HTTPHandler) {
        routes.append(Route(method: method, segments: pattern.split(separator: "/"), handler: handler))
    }

    public enum Match {
        case found(HTTPHandler, PathParameters)
        case methodNotAllowed(allow: [String])
        case notFound
    }

    public func match(method: HTTPMethod, path: String) -> Match {
        let parts = path.split(separator: "/")
        var allow: [String] = []
        for route in routes {
            guard let params = Router.bind(route.segments, parts) else { continue }
            // HEAD is served by the GET handler; the responder drops the body.
            if route.method == method || (method == .head && route.method == .get) {
                return .found(route.handler, params)
            }
            allow.append(route.method.name)
        }
        if allow.isEmpty { return .notFound }
        if allow.contains("GET") && !allow.contains("HEAD") { allow.append("HEAD") }
        return .methodNotAllowed(allow: allow)
    }

    private static func bind(_ pattern: [Substring], _ parts: [Substring]) -> PathParameters? {
        guard pattern.count == parts.count else { return nil }
        var params = PathParameters()
        for (p, v) in zip(pattern, parts) {
            if p.first == "{" && p.last == "}" {
                params.values.append((String(p.dropFirst().dropLast()), String(v)))
            } else if p != v {
                return nil
            }
        }
        return params
    }

    /// Dispatches a request: routes it, or answers 404/405 itself.
    public func handle(_ request: HTTPRequest, _ responder: HTTPResponder) {
        if let preflight, preflight(request, responder) { return }
        switch match(method: request.head.method, path: request.head.path) {
        case .found(let handler, let params):
            handler(request, params, responder)
        case .methodNotAllowed(let allow):
            var h = HTTPHeaders()
            h.add("Allow", allow.joined(separator: ", "))
            responder.respondError(status: 405, message: "method \(request.head.method.name) is not allowed on \(request.head.path)", headers: h)
        case .notFound:
            responder.respondError(status: 404, message: "no route for \(request.head.path)")
        }
    }
}
