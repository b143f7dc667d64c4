/// Strict UTF-8 checks (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.
/// Hand-written because the stdlib only validates while building a `String`, and the scanner must
/// validate strings it skips without materialising them.
enum UTF8Validation {
    /// Length of the valid sequence starting at `p[i]` (a non-ASCII lead byte), or nil.
    @inline(__always)
    static func sequenceLength(_ p: UnsafeRawBufferPointer, _ i: Int) -> Int? {
        let n = p.count
        let b0 = p[i]
        @inline(__always) func cont(_ k: Int) -> Bool { k < n && p[k] & 0xC0 == 0x80 }
        switch b0 {
        case 0xC2...0xDF:
            return cont(i + 1) ? 2 : nil
        case 0xE0:
            guard i + 1 < n, (0xA0...0xBF).contains(p[i + 1]), cont(i + 2) else { return nil }
            return 3
        case 0xED:
            // ED A0..BF would encode UTF-16 surrogates.
            guard i + 1 < n, (0x80...0x9F).contains(p[i + 1]), cont(i + 2) else { return nil }
            return 3
        case 0xE1...0xEC, 0xEE...0xEF:
            return cont(i + 1) && cont(i + 2) ? 3 : nil
        case 0xF0:
            guard i + 1 < n, (0x90...0xBF).contains(p[i + 1]), cont(i + 2), cont(i + 3) else { return nil }
            return 4
        case 0xF1...0xF3:
            return cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : nil
        case 0xF4:
            guard i + 1 < n, (0x80...0x8F).contains(p[i + 1]), cont(i + 2), cont(i + 3) else { return nil }
            return 4
        default:
            return nil
        }
    }

    /// Offset of the first invalid byte, or nil when the whole buffer is valid UTF-8.
    static func firstInvalid(_ p: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        while i < p.count {
            if p[i] < 0x80 { i += 1; continue }
            guard let len = sequenceLength(p, i) else { return i }
            i += len
        }
        return nil
    }
}
