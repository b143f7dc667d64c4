import JSONCore

/// Decodes Gemini `streamGenerateContent?alt=sse` (docs/wire-formats.md §4.3): CRLF-framed data events,
/// no end marker, so a stream is complete only if a `finishReason` arrived before the body ended.
public struct GeminiStreamDecoder: ProviderStreamDecoder {
    var core = SSEProviderDecoder<State>()

    public init() {}

    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (StreamEvent) -> Void) { core.feed(bytes, emit) }
    public mutating func finish(_ emit: (StreamEvent) -> Void) { core.finish(emit) }

    struct State: SSEEventHandling {
        static let provider = ProviderKind.gemini

        /// No end marker: the stream is complete when a finishReason arrived before the body ended.
        mutating func bodyEnded(_ emit: (StreamEvent) -> Void) {
            if finished {
                // Usage is cumulative per chunk; only the last one counts (§4.4).
                if let usage { emit(.usage(usage)) }
                end.done(emit)
            } else {
                end.fail(StreamTermination.incomplete(.gemini, expected: "a finishReason"), emit)
            }
        }

        var end = StreamTermination()
        var finished = false
        var usage: Usage?

        mutating func handle(_ event: SSEEventView, _ emit: (StreamEvent) -> Void) {
            guard !end.isTerminated else { return }
            do throws(JSONError) {
                var chunk = Chunk()
                try chunk.scan(event.data)
                if let error = chunk.error {
                    end.fail(GeminiErrors.fromBody(.object([("error", error)]), status: nil), emit)
                    return
                }
                if !chunk.text.isEmpty { emit(.text(chunk.text)) }
                if let u = chunk.usage { usage = u }
                if !finished, let reason = chunk.finishReason ?? chunk.blockReason {
                    finished = true
                    // A blocked prompt has no candidates, only promptFeedback.blockReason.
                    emit(.finish(chunk.finishReason != nil ? .gemini(reason) : FinishReason(.contentFilter, raw: reason)))
                }
            } catch {
                end.fail(StreamTermination.malformed(.gemini, error.description), emit)
            }
        }
    }

    /// The members of one `GenerateContentResponse` the gateway relays.
    struct Chunk {
        var text = ""
        var finishReason: String?
        var blockReason: String?
        var usage: Usage?
        var error: JSONValue?

        mutating func scan(_ data: UnsafeRawBufferPointer) throws(JSONError) {
            var s = JSONScanner(data)
            try s.beginObject()
            while let key = try s.nextKey() {
                if key == "candidates" {
                    try s.beginArray()
                    var index = 0
                    while try s.nextElement() {
                        if index == 0 { try scanCandidate(&s) } else { try s.skipValue() }
                        index += 1
                    }
                } else if key == "usageMetadata" {
                    usage = try Self.scanUsage(&s)
                } else if key == "promptFeedback" {
                    try s.beginObject()
                    while let k = try s.nextKey() {
                        if k == "blockReason" { blockReason = try s.readStringOrNull() } else { try s.skipValue() }
                    }
                } else if key == "error" {
                    error = try s.readValue()
                } else {
                    try s.skipValue()
                }
            }
            try s.finish()
        }

        mutating func scanCandidate(_ s: inout JSONScanner) throws(JSONError) {
            try s.beginObject()
            while let key = try s.nextKey() {
                if key == "content" {
                    try s.beginObject()
                    while let k = try s.nextKey() {
                        if k == "parts" { try scanParts(&s) } else { try s.skipValue() }
                    }
                } else if key == "finishReason" {
                    finishReason = try s.readStringOrNull()
                } else {
                    try s.skipValue()
                }
            }
        }

        mutating func scanParts(_ s: inout JSONScanner) throws(JSONError) {
            try s.beginArray()
            while try s.nextElement() {
                var partText: String?
                var thought = false
                try s.beginObject()
                while let k = try s.nextKey() {
                    if k == "text" {
                        partText = try s.readString()
                    } else if k == "thought" {
                        if try s.nextKind() == .bool { thought = try s.readBool() } else { try s.skipValue() }
                    } else {
                        try s.skipValue()
                    }
                }
                // Thought summaries are the model's reasoning, not its answer.
                if let partText, !thought { text += partText }
            }
        }

        /// §4.4: prompt = promptTokenCount + toolUsePromptTokenCount; completion = total − prompt
        /// (candidates + thoughts); total = totalTokenCount.
        static func scanUsage(_ s: inout JSONScanner) throws(JSONError) -> Usage {
            var prompt: Int64 = 0, toolPrompt: Int64 = 0, candidates: Int64 = 0, thoughts: Int64 = 0
            var total: Int64?
            try s.beginObject()
            while let key = try s.nextKey() {
                if key == "promptTokenCount" {
                    prompt = try s.readIntOrNull() ?? 0
                } else if key == "toolUsePromptTokenCount" {
                    toolPrompt = try s.readIntOrNull() ?? 0
                } else if key == "candidatesTokenCount" {
                    candidates = try s.readIntOrNull() ?? 0
                } else if key == "thoughtsTokenCount" {
                    thoughts = try s.readIntOrNull() ?? 0
                } else if key == "totalTokenCount" {
                    total = try s.readIntOrNull()
                } else {
                    try s.skipValue()
                }
            }
            let promptTokens = prompt &+ toolPrompt
            let totalTokens = total ?? (promptTokens &+ candidates &+ thoughts)
            return Usage(promptTokens: Int(promptTokens), completionTokens: Int(totalTokens &- promptTokens), totalTokens: Int(totalTokens))
        }
    }
}
