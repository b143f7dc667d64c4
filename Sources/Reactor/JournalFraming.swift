/// The framing of an append-only journal: each record is `CRJ1`, its payload length (UInt32,
/// little-endian), the CRC-32 of the payload (UInt32, little-endian), then the payload. A crash
/// part-way through an append leaves a last record whose length runs past the end of the file or
/// whose checksum does not match: reading stops there and reports the bytes left over.
public enum JournalFraming {
    public static let magic: [UInt8] = Array("CRJ1".utf8)
    public static let headerSize = 12
    /// Larger lengths are damage, not records (an answer is far smaller), so a garbled header
    /// never makes a reader allocate gigabytes.
    public static let maxPayload = 64 << 20

    /// `payload` framed as one record.
    public static func frame(_ payload: [UInt8]) -> [UInt8] {
        var out = magic
        out.reserveCapacity(headerSize + payload.count)
        appendLE(UInt32(payload.count), to: &out)
        appendLE(CRC32.checksum(payload), to: &out)
        out.append(contentsOf: payload)
        return out
    }

    /// What a header says: the payload length and checksum, or nil when it is not a header.
    public static func header(_ h: some Collection<UInt8>) -> (length: Int, checksum: UInt32)? {
        let b = Array(h.prefix(headerSize))
        guard b.count == headerSize, Array(b[0..<4]) == magic else { return nil }
        let length = Int(readLE(b, at: 4))
        guard length <= maxPayload else { return nil }
        return (length, readLE(b, at: 8))
    }

    /// The whole records at the start of `bytes`, and how many bytes they span; whatever follows
    /// (a torn or damaged record, and everything after it) is not read.
    public static func records(in bytes: [UInt8]) -> (payloads: [[UInt8]], validBytes: Int) {
        var out: [[UInt8]] = []
        var at = 0
        while bytes.count - at >= headerSize {
            guard let h = header(bytes[at..<(at + headerSize)]), bytes.count - at - headerSize >= h.length else { break }
            let payload = Array(bytes[(at + headerSize)..<(at + headerSize + h.length)])
            guard CRC32.checksum(payload) == h.checksum else { break }
            out.append(payload)
            at += headerSize + h.length
        }
        return (out, at)
    }

    static func appendLE(_ v: UInt32, to out: inout [UInt8]) {
        for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
    }

    static func readLE(_ b: [UInt8], at: Int) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(b[at + i]) << (8 * UInt32(i)) }
        return v
    }
}

/// CRC-32 (IEEE 802.3, the one zlib and PNG use), table-driven.
public enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
