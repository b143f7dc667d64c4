import Storage

/// Where an event leaves a client in an answer: the answer's id and how many characters (Unicode
/// scalars, as PostgreSQL's `length` counts them) of its text the client has. It is the SSE `id`
/// of every event of `/api/v1/chat` (`<message id>:<characters>`), so a reconnecting client's
/// `Last-Event-ID` says exactly what to send next.
struct EventPosition: Equatable {
    let messageID: String
    let characters: Int

    /// `<uuid>:<n>`; nil for anything else.
    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let id = String(text[..<colon])
        let n = text[text.index(after: colon)...]
        guard isValidUUID(id), !n.isEmpty, n.utf8.count <= 10, n.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let count = Int(n) else { return nil }
        messageID = id.lowercased()
        characters = count
    }

    init(messageID: String, characters: Int) {
        self.messageID = messageID
        self.characters = characters
    }
}
