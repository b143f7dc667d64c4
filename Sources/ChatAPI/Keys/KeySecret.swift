import Reactor

/// A fresh client key: the secret, shown once and never stored, and what the database keeps of
/// it (its SHA-256 in hex, and its first characters to tell keys apart in lists).
struct KeySecret {
    let secret: String
    let hash: String
    let prefix: String

    static let prefixLength = 10

    /// 24 random bytes (192 bits) behind `cr_`, the same shape as the generated CHAT_API_KEYS key.
    static func generate() -> KeySecret {
        let secret = "cr_" + APIKeys.hex(SecureRandom.bytes(24))
        return KeySecret(secret: secret, hash: APIKeys.hex(APIKeys.sha256(secret)), prefix: String(secret.prefix(prefixLength)))
    }
}
