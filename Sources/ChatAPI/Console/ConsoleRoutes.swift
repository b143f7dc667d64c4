import HTTP

/// `GET /` and `GET /console/{file}`: the web console's files, built into the binary
/// (ConsoleAssets.swift). They need no key: the page asks for one and sends it with each API call.
enum ConsoleRoutes {
    static let indexName = "index.html"

    /// Only the console's own files may run or style the page: no inline script or style, no
    /// eval, no other origin, no framing (the page holds a key in the tab's storage).
    static let contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static func install(on router: Router) {
        router.add(.get, "/") { req, _, r in serve(indexName, req, r) }
        router.add(.get, "/console/{file}") { req, p, r in serve(p["file"] ?? "", req, r) }
    }

    static func serve(_ name: String, _ req: HTTPRequest, _ r: HTTPResponder) {
        guard let asset = ConsoleAsset.byName[name] else {
            r.respondError(status: 404, message: "no console file '\(name)'")
            return
        }
        var h = HTTPHeaders()
        h.add("ETag", asset.etag)
        // The names carry no content hash, so a cached copy is checked on every use: a new build's
        // files are seen at once, and an unchanged file costs a 304.
        h.add("Cache-Control", "no-cache")
        h.add("Content-Security-Policy", contentSecurityPolicy)
        h.add("X-Content-Type-Options", "nosniff")
        h.add("Referrer-Policy", "no-referrer")
        if let condition = req.head.headers["If-None-Match"], etagMatches(condition, asset.etag) {
            r.respond(status: 304, headers: h)
            return
        }
        h.add("Content-Type", asset.contentType)
        r.respond(status: 200, headers: h, body: asset.body)
    }

    /// `If-None-Match` against our ETag: `*`, or a list of entity tags compared weakly, as RFC 9110
    /// §13.1.2 asks (a `W/` prefix is ignored).
    static func etagMatches(_ header: String, _ etag: String) -> Bool {
        for part in header.split(separator: ",") {
            var tag = part.trimmingSpaces
            if tag == "*" { return true }
            if tag.hasPrefix("W/") { tag = String(tag.dropFirst(2)) }
            if tag == etag { return true }
        }
        return false
    }
}
