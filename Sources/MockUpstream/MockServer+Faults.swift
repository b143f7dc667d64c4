import HTTP

/// The header that tells the mock which "deployment" a request comes from: gateway tests point
/// several deployments at one mock and have each send its own value.
enum MockTag {
    static let header = "X-Mock-Tag"

    /// The percent-decoded value of `name=…` in a query string, if present.
    static func queryValue(_ query: String?, _ name: String) -> String? {
        for item in (query ?? "").split(separator: "&") where item.hasPrefix(name + "=") {
            return percentDecoded(item.dropFirst(name.count + 1))
        }
        return nil
    }

    /// Invalid escapes are kept as written: a filter that matches nothing is answer enough.
    private static func percentDecoded(_ s: Substring) -> String {
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "%"), i + 2 < b.count, let hi = hex(b[i + 1]), let lo = hex(b[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(b[i] == UInt8(ascii: "+") ? UInt8(ascii: " ") : b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// Runtime faults per tag (`FaultRule`): the `/faults` routes, and applying a rule to a model
/// request in place of the prompt's `fault=`.
extension MockServer {
    func addFaultRoutes(_ router: Router) {
        router.add(.put, "/faults/{tag}") { [unowned self] req, p, r in
            guard let tag = p["tag"], !tag.isEmpty else { return MockServer.plain(r, 400, "a tag is required") }
            do throws(FaultRule.Invalid) {
                self.faults.set(try FaultRule.parse(req.body), for: tag)
                r.respond(status: 204)
            } catch {
                MockServer.plain(r, 400, error.message)
            }
        }
        router.add(.delete, "/faults/{tag}") { [unowned self] _, p, r in
            if let tag = p["tag"] { self.faults.remove(tag) }
            r.respond(status: 204)
        }
        router.add(.get, "/faults") { [unowned self] _, _, r in r.respondJSON(status: 200, self.faults.json()) }
        router.add(.delete, "/faults") { [unowned self] _, _, r in
            self.faults.removeAll()
            r.respond(status: 204)
        }
    }

    private static func plain(_ r: HTTPResponder, _ status: Int, _ message: String) {
        var h = HTTPHeaders()
        h.add("Content-Type", "text/plain; charset=utf-8")
        r.respond(status: status, headers: h, body: Array((message + "\n").utf8))
    }

    /// The directives to answer with once the tag's runtime fault (or else the prompt's) is
    /// applied and logged; nil when the fault has already answered, or means never to.
    func applyFaults(_ r: HTTPResponder, _ format: MockWireFormat, _ prompt: MockDirectives, stream: Bool) -> MockDirectives? {
        guard let tag = r.head.headers[MockTag.header], let rule = faults.take(tag) else {
            // Only numeric prompt faults apply to a non-streamed answer.
            if let f = prompt.fault, stream || Int(f.rawValue) != nil { noteFault(r, f.rawValue) }
            return prompt
        }
        noteFault(r, rule.label)
        var d = prompt
        d.fault = nil
        switch rule.kind {
        case .status:
            answerError(r, format, status: rule.status, rule: rule)
            return nil
        case .reset:
            drop(r)
            return nil
        case .hang:
            guard stream else {
                hold(r)
                return nil
            }
            d.fault = .hang
        case .midstream:
            // A non-streamed answer has no middle to break in: the provider reports the failed
            // generation as an error status instead.
            guard stream else {
                answerError(r, format, status: 500, rule: rule)
                return nil
            }
            d.fault = .midstream
            d.after = rule.after
        case .slowFirst:
            d.silenceMs = rule.firstDelayMs
        }
        return d
    }

    /// The route's own error answer, with the rule's retry headers in place of the provider's.
    func answerError(_ r: HTTPResponder, _ format: MockWireFormat, status: Int, rule: FaultRule?) {
        let (providerHeaders, body) = format.httpError(status: status, message: "mock fault \(status)")
        var h = providerHeaders
        for (name, value) in [("Retry-After", rule?.retryAfter), ("retry-after-ms", rule?.retryAfterMs)] {
            switch value {
            case .set(let v): h.replaceOrAdd(name, v)
            case .remove: h.remove(name)
            case nil: break
            }
        }
        r.respond(status: status, headers: h, body: body)
    }

    /// Never answers. A watcher is set so the connection reports the client leaving before any
    /// response head (`HTTPServerConnection.connectionReadDidEnd`) and the log shows it.
    private func hold(_ r: HTTPResponder) {
        r.onClientGone = {}
    }
}
