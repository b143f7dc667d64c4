import Reactor

/// One file of the web console (console/ in the repository), built into the binary by
/// scripts/embed-console.py, with what its responses need: the media type and a strong ETag.
struct ConsoleAsset: Sendable {
    let name: String
    let contentType: String
    let body: [UInt8]
    /// A strong validator: the body's SHA-256 (first 16 bytes, hex), quoted.
    let etag: String

    init?(name: String, text: String) {
        guard let type = ConsoleAsset.contentType(forName: name) else { return nil }
        self.name = name
        contentType = type
        body = Array(text.utf8)
        etag = "\"" + APIKeys.hex(Array(Crypto.sha256(text).prefix(16))) + "\""
    }

    /// The Content-Type for a file name, or nil for a kind the console does not serve. Text types
    /// carry their charset so no browser guesses one.
    static func contentType(forName name: String) -> String? {
        guard let dot = name.lastIndex(of: ".") else { return nil }
        switch name[dot...] {
        case ".html": return "text/html; charset=utf-8"
        case ".css": return "text/css; charset=utf-8"
        case ".js": return "text/javascript; charset=utf-8"
        case ".svg": return "image/svg+xml"
        default: return nil
        }
    }

    /// Every embedded file by name, built once per process.
    static let byName: [String: ConsoleAsset] = {
        var out: [String: ConsoleAsset] = [:]
        for (name, text) in sources {
            if let asset = ConsoleAsset(name: name, text: text) { out[name] = asset }
        }
        return out
    }()
}
