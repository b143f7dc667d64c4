import Reactor

/// Who wrote a message.
public enum MessageRole: String, Sendable, Equatable {
    case system, user, assistant
}

/// Where a message is in its life. `streaming` rows left by a crash become `interrupted` at start-up.
public enum MessageStatus: String, Sendable, Equatable {
    case complete, streaming, error, cancelled, interrupted
}

/// Token counts reported by a provider.
public struct TokenUsage: Sendable, Equatable {
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var totalTokens: Int?
    public init(promptTokens: Int? = nil, completionTokens: Int? = nil, totalTokens: Int? = nil) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
    }
}

/// A conversation row. Timestamps are ISO-8601 UTC strings with milliseconds.
public struct Conversation: Sendable, Equatable {
    public var id: String
    public var title: String?
    public var systemPrompt: String?
    public var model: String?
    public var createdAt: String
    public var updatedAt: String
}

/// One line of the conversation list.
public struct ConversationSummary: Sendable, Equatable {
    public var id: String
    public var title: String?
    public var model: String?
    public var createdAt: String
    public var updatedAt: String
    public var messageCount: Int
}

/// A stored message.
public struct StoredMessage: Sendable, Equatable {
    public var id: String
    public var conversationID: String
    public var role: MessageRole
    public var content: String
    public var model: String?
    public var provider: String?
    public var status: MessageStatus
    public var finishReason: String?
    public var usage: TokenUsage?
    public var ttftMs: Int?
    public var latencyMs: Int?
    public var error: String?
    public var createdAt: String
    /// The catalog deployment that answered, and the model id it was sent upstream.
    public var deployment: String? = nil
    public var upstreamModel: String? = nil
    /// The upstream attempts as stored (a JSON array), when the answer had any.
    public var attemptsJSON: String? = nil
    /// For an answer of a multi-model turn: its run.
    public var run: RunInfo? = nil
    /// Served from the response cache.
    public var cached = false
}

/// A conversation with its messages, oldest first.
public struct ConversationDetail: Sendable, Equatable {
    public var conversation: Conversation
    public var messages: [StoredMessage]
}

/// What `beginTurn` stored and loaded in its one round trip.
public struct TurnStart: Sendable, Equatable {
    public var conversation: Conversation
    public var isNewConversation: Bool
    public var userMessageID: String
    /// The assistant row opened with status `streaming`; finalize it with `finalizeAssistantMessage`.
    public var assistantMessageID: String
    /// Every stored message of the conversation oldest first, including the new user message and
    /// excluding the just-opened assistant row. Loaded for the upstream request, so only id, role,
    /// content, status and created_at are filled in.
    public var history: [StoredMessage]
    /// The pool's `connectionLosses` when the turn was stored. The turn's rows are committed without
    /// waiting for the WAL flush; if the database went away since, they may be gone when the answer
    /// is finalized, and `finalizeAssistantMessage` writes them again.
    public var lossMark: Int
    /// The model and provider the assistant message was opened with.
    public var model: String?
    public var provider: String?
    public var deployment: String? = nil
    public var upstreamModel: String? = nil
    /// The new user message (the last entry of `history`).
    public var userMessage: StoredMessage? { history.last }
}

/// How much of a conversation a turn sends upstream: at most `messages` of the newest messages,
/// and only as many of them as fit in `characters` (the newest first). A long conversation then
/// costs a turn no more than its budget, in the database and on the loop.
public struct HistoryBudget: Sendable, Equatable {
    public var messages: Int
    public var characters: Int

    public init(messages: Int, characters: Int) {
        self.messages = messages
        self.characters = characters
    }

    public static let standard = HistoryBudget(messages: 1_000, characters: 1_000_000)
}

extension TurnStart {
    /// A turn as an answer's write needs it to store the turn again (an answer read back from the
    /// journal): the conversation's own fields and the user message, no other history.
    /// `lossMark` -1 matches no pool, so the write restores the turn whenever its row is missing.
    public init(conversationID: String, title: String?, systemPrompt: String?, conversationModel: String?,
                isNewConversation: Bool, userMessageID: String, userText: String, assistantMessageID: String,
                model: String?, provider: String?, deployment: String?, upstreamModel: String?, lossMark: Int = -1) {
        let conversation = Conversation(id: conversationID, title: title, systemPrompt: systemPrompt, model: conversationModel,
                                        createdAt: "", updatedAt: "")
        let user = StoredMessage(id: userMessageID, conversationID: conversationID, role: .user, content: userText, model: nil,
                                 provider: nil, status: .complete, finishReason: nil, usage: nil, ttftMs: nil, latencyMs: nil,
                                 error: nil, createdAt: "")
        self.init(conversation: conversation, isNewConversation: isNewConversation, userMessageID: userMessageID,
                  assistantMessageID: assistantMessageID, history: [user], lossMark: lossMark, model: model, provider: provider,
                  deployment: deployment, upstreamModel: upstreamModel)
    }
}

/// A page of the conversation list.
public struct ConversationPage: Sendable, Equatable {
    public var items: [ConversationSummary]
    /// Pass back as `cursor` for the next page; nil on the last page.
    public var nextCursor: String?
}

/// Errors of the store, as values.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The pagination cursor was not produced by us (or was damaged).
    case invalidCursor
    /// The conversation does not exist or belongs to another owner (answer 404).
    case notFound
    /// An argument was out of range (e.g. limit).
    case invalidArgument(String)
    /// The database failed; `.overloaded`/`.unavailable` map to 503, the rest to 500.
    case database(PGError)

    public var description: String {
        switch self {
        case .invalidCursor: return "invalid cursor"
        case .notFound: return "conversation not found"
        case .invalidArgument(let m): return m
        case .database(let e): return e.description
        }
    }
}

/// A random (version 4) UUID in canonical lower-case form.
public func makeUUIDv4() -> String {
    var b = SecureRandom.bytes(16)
    b[6] = (b[6] & 0x0f) | 0x40
    b[8] = (b[8] & 0x3f) | 0x80
    var s = ""
    s.reserveCapacity(36)
    for (i, byte) in b.enumerated() {
        if i == 4 || i == 6 || i == 8 || i == 10 { s.append("-") }
        s.append(hexDigit(byte >> 4))
        s.append(hexDigit(byte & 0x0f))
    }
    return s
}

/// True for the canonical 8-4-4-4-12 hex form (any case). Ids from URLs are checked before any query.
public func isValidUUID(_ s: String) -> Bool {
    let u = Array(s.utf8)
    guard u.count == 36 else { return false }
    for (i, c) in u.enumerated() {
        if i == 8 || i == 13 || i == 18 || i == 23 {
            if c != UInt8(ascii: "-") { return false }
        } else if hexValue(c) == nil {
            return false
        }
    }
    return true
}

func hexDigit(_ v: UInt8) -> Character {
    Character(Unicode.Scalar(v < 10 ? v + 48 : v + 87))
}

func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case 48...57: return c - 48
    case 97...102: return c - 87
    case 65...70: return c - 55
    default: return nil
    }
}

/// Opaque keyset cursor: hex of "<updated_at µs since epoch>|<id>".
enum Cursor {
    static func encode(micros: Int64, id: String) -> String {
        var out = ""
        for b in "\(micros)|\(id)".utf8 {
            out.append(hexDigit(b >> 4))
            out.append(hexDigit(b & 0x0f))
        }
        return out
    }

    static func decode(_ cursor: String) -> (micros: Int64, id: String)? {
        let u = Array(cursor.utf8)
        guard u.count % 2 == 0, u.count <= 200 else { return nil }
        var bytes: [UInt8] = []
        var i = 0
        while i < u.count {
            guard let h = hexValue(u[i]), let l = hexValue(u[i + 1]) else { return nil }
            bytes.append(h << 4 | l)
            i += 2
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 2, let micros = Int64(parts[0]) else { return nil }
        let id = String(parts[1])
        guard isValidUUID(id) else { return nil }
        return (micros, id.lowercased())
    }
}
