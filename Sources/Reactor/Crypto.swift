import COpenSSL

/// SHA-256 and constant-time comparison from libcrypto (through the COpenSSL shim).
public enum Crypto {
    /// The SHA-256 digest (32 bytes) of the string's UTF-8 bytes.
    public static func sha256(_ s: String) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var str = s
        str.withUTF8 { buf in out.withUnsafeMutableBufferPointer { copenssl_sha256(buf.baseAddress, buf.count, $0.baseAddress) } }
        return out
    }

    /// Whether `a` and `b` are equal, in time that depends only on their length (CRYPTO_memcmp).
    /// Buffers of different lengths are unequal.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in copenssl_memcmp(x.baseAddress, y.baseAddress, a.count) } } == 0
    }
}
