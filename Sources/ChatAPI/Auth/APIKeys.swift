import Reactor

/// Client keys, held only as SHA-256 digests. A request's key is hashed and compared with each
/// digest in constant time, so neither the keys nor timing reveal anything. The owner of a
/// conversation is the hex digest of the key that created it.
public struct APIKeys: Sendable {
    private let digests: [[UInt8]]
    /// Each digest in hex: a caller's owner id, worked out once here rather than per request
    /// (every open stream held its own copy).
    private let owners: [String]

    public init(keys: [String]) {
        digests = keys.map(APIKeys.sha256)
        owners = digests.map(APIKeys.hex)
    }

    public var isEmpty: Bool { digests.isEmpty }

    /// The owner id (hex SHA-256) when the `Authorization: Bearer` value is a known key.
    public func owner(forAuthorization header: String?) -> String? {
        guard let header, header.utf8.count > 7 else { return nil }
        let scheme = header.prefix(7).lowercased()
        guard scheme == "bearer " else { return nil }
        return owner(ofTrimmed: header.dropFirst(7).trimmingSpaces)
    }

    /// The owner id when an `x-api-key` value is a known key.
    public func owner(forKey value: String) -> String? {
        owner(ofTrimmed: value.trimmingSpaces)
    }

    private func owner(ofTrimmed key: String) -> String? {
        guard !key.isEmpty else { return nil }
        let d = APIKeys.sha256(key)
        return owner(ofDigest: d)
    }

    /// The owner id (hex of `d`) when `d` is one of these keys' digests.
    func owner(ofDigest d: [UInt8]) -> String? {
        var match: Int?
        for (i, known) in digests.enumerated() {
            // Every digest is compared, match or not: the time taken does not depend on which key matched.
            if Crypto.constantTimeEquals(d, known) { match = i }
        }
        return match.map { owners[$0] }
    }

    /// Whether `d` (a SHA-256) is one of these keys'.
    func contains(digest d: [UInt8]) -> Bool {
        var match = false
        for known in digests {
            // Every digest is compared, match or not: the time taken does not depend on which key matched.
            if Crypto.constantTimeEquals(d, known) { match = true }
        }
        return match
    }

    /// The secret a request presents: `Authorization: Bearer`, else `x-api-key`; nil when neither
    /// is usable. When both are sent, `Authorization` decides.
    public static func presentedSecret(authorization: String?, apiKey: String?) -> String? {
        if let header = authorization {
            guard header.utf8.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
            let s = header.dropFirst(7).trimmingSpaces
            return s.isEmpty ? nil : s
        }
        guard let s = apiKey?.trimmingSpaces, !s.isEmpty else { return nil }
        return s
    }

    public static func sha256(_ s: String) -> [UInt8] { Crypto.sha256(s) }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// With no CHAT_API_KEYS: the key kept in `<dataDir>/api-key`, generated (and announced) on first start.
    public static func loadOrGenerate(dataDir: String) -> Result<(key: String, generated: Bool), SystemError> {
        let path = dataDir + "/api-key"
        if let existing = Environment.readFile(path)?.trimmingSpaces.split(separator: "\n").first, !existing.isEmpty {
            return .success((String(existing), false))
        }
        do { try FileSystem.makeDirectory(dataDir, mode: 0o711) } catch { return .failure(error) }
        let key = "cr_" + hex(SecureRandom.bytes(24))
        do { try FileSystem.writeFile(path, key + "\n", mode: 0o600) } catch { return .failure(error) }
        return .success((key, true))
    }
}
