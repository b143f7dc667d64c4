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
        /// For a pattern without `{params}`: the path it matches, in canonical form ("/a/b").
        let staticPath: String?
        /// Index of the pattern in `patterns`.
        let patternIndex: Int
    }

    private var routes: [Route] = []
    /// The distinct route patterns in the order added: a request's `routeIndex` points here, so
    /// metrics label requests by pattern (bounded) instead of by path (one label per id).
    public private(set) var patterns: [String] = []
    /// Runs before routing when set (CORS pre-flights, auth); returning true means "handled".
    public var preflight: ((HTTPRequest, HTTPResponder) -> Bool)?

    public init() {}

    public func add(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping HTTPHandler) {
        let segments = pattern.split(separator: "/")
        let isStatic = !segments.contains { $0.first == "{" && $0.last == "}" }
        let index: Int
        if let known = patterns.firstIndex(of: pattern) {
            index = known
        } else {
            index = patterns.count
            patterns.append(pattern)
        }
        routes.append(Route(method: method, segments: segments, handler: handler,
                            staticPath: isStatic ? "/" + segments.joined(separator: "/") : nil, patternIndex: index))
    }

    public enum Match {
        case found(HTTPHandler, PathParameters)
        case methodNotAllowed(allow: [String])
        case notFound
    }

    public func match(method: HTTPMethod, path: String) -> Match {
        resolve(method: method, path: path).match
    }

    /// The match, and the index of the first pattern the path fits (-1 when none does).
    private func resolve(method: HTTPMethod, path: String) -> (match: Match, patternIndex: Int) {
        // A canonical path (no empty segments) matches a static route exactly when the strings
        // are equal, so the common case needs no split into segments (an array per request).
        let canonical = Router.isCanonical(path)
        var parts: [Substring]?
        var allow: [String] = []
        var firstPattern = -1
        for route in routes {
            let params: PathParameters
            if canonical, let fixed = route.staticPath {
                guard fixed == path else { continue }
                params = PathParameters()
            } else {
                if parts == nil { parts = path.split(separator: "/") }
                guard let bound = Router.bind(route.segments, parts ?? []) else { continue }
                params = bound
            }
            // HEAD is served by the GET handler; the responder drops the body.
            if route.method == method || (method == .head && route.method == .get) {
                return (.found(route.handler, params), route.patternIndex)
            }
            if firstPattern < 0 { firstPattern = route.patternIndex }
            allow.append(route.method.name)
        }
        if allow.isEmpty { return (.notFound, -1) }
        if allow.contains("GET") && !allow.contains("HEAD") { allow.append("HEAD") }
        return (.methodNotAllowed(allow: allow), firstPattern)
    }

    /// "/" followed by non-empty segments: no "//" and no trailing "/".
    static func isCanonical(_ path: String) -> Bool {
        var previous: UInt8 = 0
        var first = true
        for byte in path.utf8 {
            if first {
                guard byte == UInt8(ascii: "/") else { return false }
                first = false
            } else if byte == UInt8(ascii: "/") && previous == UInt8(ascii: "/") {
                return false
            }
            previous = byte
        }
        return !first && (previous != UInt8(ascii: "/") || path.utf8.count == 1)
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
        // Routed before the pre-flight hook so a pre-flight is labelled with its path's pattern too.
        let (match, patternIndex) = resolve(method: request.head.method, path: request.head.path)
        responder.routeIndex = patternIndex
        if let preflight, preflight(request, responder) { return }
        switch match {
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
