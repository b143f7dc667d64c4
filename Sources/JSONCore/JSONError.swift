/// Why a JSON document was rejected, and where (byte offset from the start of the input).
public struct JSONError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The class of failure, for callers that branch on it; `message` is for humans.
    public enum Kind: Sendable, Equatable {
        case unexpectedEnd
        case unexpectedByte
        case invalidNumber
        case invalidEscape
        case invalidUnicodeEscape
        case invalidUTF8
        case controlCharacter
        case tooDeep
        case trailingData
        case typeMismatch
    }

    public var kind: Kind
    public var message: String
    public var offset: Int

    public init(_ kind: Kind, _ message: String, at offset: Int) {
        self.kind = kind
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(message) at byte \(offset)" }
}
