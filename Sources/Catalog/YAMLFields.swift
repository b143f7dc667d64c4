import Yams

/// Typed reads of one YAML mapping that name the field and its line when the value is wrong,
/// and refuse keys nobody reads (a misspelt `api_key_env` must not pass silently).
struct YAMLFields {
    let node: Node
    let mapping: Node.Mapping
    /// The path of this mapping, e.g. `models[0].deployments[1]`.
    let path: String
    let file: String

    init(_ node: Node, path: String, file: String, allowed: Set<String>) throws(CatalogLoadError) {
        self.node = node
        self.path = path
        self.file = file
        guard let m = node.mapping else {
            throw CatalogLoadError(file: file, line: node.mark?.line ?? 0, field: path, message: "must be a mapping of field: value")
        }
        mapping = m
        for key in m.keys {
            guard let name = key.string else {
                throw CatalogLoadError(file: file, line: key.mark?.line ?? 0, field: path, message: "field names must be strings")
            }
            guard allowed.contains(name) else {
                throw CatalogLoadError(file: file, line: key.mark?.line ?? 0, field: field(name),
                                       message: "unknown field (allowed: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
    }

    var line: Int { node.mark?.line ?? 0 }

    func field(_ name: String) -> String { path.isEmpty ? name : path + "." + name }

    func error(_ name: String, _ message: String, at value: Node? = nil) -> CatalogLoadError {
        CatalogLoadError(file: file, line: value?.mark?.line ?? self[name]?.mark?.line ?? line, field: field(name), message: message)
    }

    subscript(name: String) -> Node? {
        for (k, v) in mapping where k.string == name { return v }
        return nil
    }

    /// The value, or nil when absent or `null`.
    func value(_ name: String) -> Node? {
        guard let v = self[name] else { return nil }
        if case .scalar(let s) = v, s.style == .plain, ["", "~", "null", "Null", "NULL"].contains(s.string) { return nil }
        return v
    }

    func required(_ name: String) throws(CatalogLoadError) -> Node {
        guard let v = value(name) else {
            throw CatalogLoadError(file: file, line: line, field: field(name), message: "is required")
        }
        return v
    }

    func string(_ name: String, required: Bool = false) throws(CatalogLoadError) -> String? {
        guard let v = value(name) else {
            if required { throw CatalogLoadError(file: file, line: line, field: field(name), message: "is required") }
            return nil
        }
        guard case .scalar(let s) = v else { throw error(name, "must be a string", at: v) }
        guard !s.string.isEmpty else { throw error(name, "must not be empty", at: v) }
        return s.string
    }

    /// A plain (unquoted) YAML number: a quoted "0.25" is a string, and `.inf`/`.nan` are not prices.
    func number(_ name: String, _ range: ClosedRange<Double>) throws(CatalogLoadError) -> Double? {
        guard let v = value(name) else { return nil }
        guard case .scalar(let s) = v, s.style == .plain, let d = Double(s.string), d.isFinite else {
            throw error(name, "must be a number, not \(describe(v))", at: v)
        }
        guard range.contains(d) else { throw error(name, "must be from \(format(range.lowerBound)) to \(format(range.upperBound))", at: v) }
        return d
    }

    func int(_ name: String, _ range: ClosedRange<Int>) throws(CatalogLoadError) -> Int? {
        guard let v = value(name) else { return nil }
        guard case .scalar(let s) = v, s.style == .plain, let n = Int(s.string) else {
            throw error(name, "must be a whole number, not \(describe(v))", at: v)
        }
        guard range.contains(n) else { throw error(name, "must be from \(range.lowerBound) to \(range.upperBound)", at: v) }
        return n
    }

    func bool(_ name: String) throws(CatalogLoadError) -> Bool? {
        guard let v = value(name) else { return nil }
        guard case .scalar(let s) = v, s.style == .plain, s.string == "true" || s.string == "false" else {
            throw error(name, "must be true or false, not \(describe(v))", at: v)
        }
        return s.string == "true"
    }

    func sequence(_ name: String, required: Bool) throws(CatalogLoadError) -> [Node]? {
        guard let v = value(name) else {
            if required { throw CatalogLoadError(file: file, line: line, field: field(name), message: "is required") }
            return nil
        }
        guard let seq = v.sequence else { throw error(name, "must be a list", at: v) }
        return Array(seq)
    }

    /// A value for a message: short, on one line.
    func describe(_ v: Node) -> String {
        switch v {
        case .scalar(let s):
            let text = s.string.count > 40 ? String(s.string.prefix(40)) + "…" : s.string
            return s.style == .plain ? "'\(text)'" : "the quoted string '\(text)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    private func format(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
    }
}
