/// How many input tokens a request is, without asking a provider: what
/// `POST /v1/messages/count_tokens` answers (docs/API.md says how the numbers are made).
public enum InputTokenEstimate {
    /// Role markers and message framing cost a few tokens per message with every provider.
    static let perMessage = 3
    /// English prose runs at about four bytes of UTF-8 per token in the providers' tokenizers;
    /// scripts with multi-byte characters come out near one token per character.
    static let bytesPerToken = 4

    /// The built-in mock counts its own prompt tokens (whitespace-separated words), so its
    /// estimate is exact: the `input_tokens` a turn then reports. Every other kind is estimated
    /// from the text's size.
    public static func count(_ request: ChatRequest, kind: DeploymentKind) -> Int {
        if kind == .mock {
            var words = request.system.map(MockModel.wordCount) ?? 0
            for m in request.messages { words += MockModel.wordCount(m.content) }
            return words
        }
        var tokens = request.system.map(textTokens) ?? 0
        for m in request.messages { tokens += perMessage + textTokens(m.content) }
        return tokens
    }

    static func textTokens(_ text: String) -> Int {
        (text.utf8.count + bytesPerToken - 1) / bytesPerToken
    }
}
