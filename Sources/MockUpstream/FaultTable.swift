import JSONCore

/// The runtime faults by `X-Mock-Tag` value (`FaultRule`), served by `/faults`.
struct FaultTable {
    private var rules: [String: FaultRule] = [:]

    /// Replaces any rule the tag had, so its `times` count starts afresh.
    mutating func set(_ rule: FaultRule, for tag: String) { rules[tag] = rule }

    mutating func remove(_ tag: String) { rules[tag] = nil }

    mutating func removeAll() { rules.removeAll() }

    /// The rule to apply to a request with this tag, counted as applied; nil when the tag has
    /// none or its `times` are spent.
    mutating func take(_ tag: String) -> FaultRule? {
        guard var rule = rules[tag], rule.remaining != 0 else { return nil }
        rule.applied += 1
        if let n = rule.remaining { rule.remaining = n - 1 }
        rules[tag] = rule
        return rule
    }

    /// `{"<tag>": {"kind", …, "remaining"?, "applied"}}`, tags sorted so the listing is stable.
    func json() -> [UInt8] {
        var w = JSONWriter(capacity: 256)
        w.beginObject()
        for tag in rules.keys.sorted() {
            guard let rule = rules[tag] else { continue }
            w.key(tag)
            rule.write(to: &w)
        }
        w.endObject()
        return w.bytes
    }
}
