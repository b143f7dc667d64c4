import Storage

/// `chatrelay keys list` for people: one aligned row per key. Never the secret or its hash.
enum KeysTable {
    static func render(_ keys: [KeyRecord]) -> String {
        guard !keys.isEmpty else { return "no keys (create one with: chatrelay keys create --name NAME)" }
        var rows: [[String]] = [["ID", "NAME", "PREFIX", "LIMITS", "CREATED", "REVOKED"]]
        for k in keys {
            rows.append([k.id, k.name, k.prefix, limits(k.limits), k.createdAt, k.revokedAt ?? "-"])
        }
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        return rows.map { row in
            var line = ""
            for (i, cell) in row.enumerated() {
                line += cell
                if i < row.count - 1 { line += String(repeating: " ", count: widths[i] - cell.count + 2) }
            }
            return line
        }.joined(separator: "\n")
    }

    /// `rpm=60 tpm=100000 streams=4 budget=$12.50/day models=a,b`, or `none`.
    static func limits(_ l: KeyLimits) -> String {
        var parts: [String] = []
        if let n = l.rpm { parts.append("rpm=\(n)") }
        if let n = l.tpm { parts.append("tpm=\(n)") }
        if let n = l.maxStreams { parts.append("streams=\(n)") }
        if let b = l.budgetUSD { parts.append("budget=$\(b)/\(l.budgetPeriod?.rawValue ?? "?")") }
        if let m = l.models { parts.append("models=\(m.joined(separator: ","))") }
        if let t = l.cacheTTLSeconds { parts.append("cache=\(t)s") }
        return parts.isEmpty ? "none" : parts.joined(separator: " ")
    }
}
