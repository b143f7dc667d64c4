import JSONCore

/// Decodes OpenAI Chat Completions SSE (docs/wire-formats.md §2.3): data-only events, `[DONE]` at the end.
public struct OpenAIStreamDecoder: ProviderStreamDecoder {
    var core = SSEProviderDecoder<State>()

    public init() {}

    /// `finishEndsStream`: a body that ends after a chunk with a `finish_reason` is complete even
    /// without `[DONE]`, as some OpenAI-compatible servers end their streams.
    public init(finishEndsStream: Bool) {
        core.state.finishEndsStream = finishEndsStream
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (StreamEvent) -> Void) { core.feed(bytes, emit) }
    public mutating func finish(_ emit: (StreamEvent) -> Void) { core.finish(emit) }

    struct State: SSEEventHandling {
        static let provider = ProviderKind.openai

        mutating func bodyEnded(_ emit: (StreamEvent) -> Void) {
            if finishEndsStream && sawFinish {
                end.done(emit)
            } else {
                end.fail(StreamTermination.incomplete(.openai, expected: "[DONE]"), emit)
            }
        }

        var end = StreamTermination()
        var finishEndsStream = false
        var sawFinish = false

        mutating func handle(_ event: SSEEventView, _ emit: (StreamEvent) -> Void) {
            guard !end.isTerminated else { return }
            if event.dataIs("[DONE]") {
                end.done(emit)
                return
            }
            do throws(JSONError) {
                var chunk = Chunk()
                try chunk.scan(event.data)
                if let error = chunk.error {
                    end.fail(OpenAIErrors.fromErrorObject(error, status: nil), emit)
                    return
                }
                if let text = chunk.content, !text.isEmpty { emit(.text(text)) }
                if let reason = chunk.finishReason {
                    sawFinish = true
                    emit(.finish(.openAI(reason)))
                }
                if let usage = chunk.usage { emit(.usage(usage)) }
            } catch {
                end.fail(StreamTermination.malformed(.openai, error.description), emit)
            }
        }
    }

    /// The members of one chunk the gateway relays; everything else is validated and skipped.
    struct Chunk {
        var content: String?
        var finishReason: String?
        var usage: Usage?
        var error: JSONValue?

        mutating func scan(_ data: UnsafeRawBufferPointer) throws(JSONError) {
            var s = JSONScanner(data)
            try s.beginObject()
            while let key = try s.nextKey() {
                if key == "choices" {
                    try s.beginArray()
                    var index = 0
                    while try s.nextElement() {
                        // Only the first choice is relayed; we never ask for n > 1.
                        if index == 0 { try scanChoice(&s) } else { try s.skipValue() }
                        index += 1
                    }
                } else if key == "usage" {
                    if try s.nextKind() == .null { try s.readNull() } else { usage = try Self.scanUsage(&s) }
                } else if key == "error" {
                    error = try s.readValue()
                } else {
                    try s.skipValue()
                }
            }
            try s.finish()
        }

        mutating func scanChoice(_ s: inout JSONScanner) throws(JSONError) {
            try s.beginObject()
            while let key = try s.nextKey() {
                if key == "delta" {
                    try s.beginObject()
                    while let k = try s.nextKey() {
                        if k == "content" { content = try s.readStringOrNull() } else { try s.skipValue() }
                    }
                } else if key == "finish_reason" {
                    finishReason = try s.readStringOrNull()
                } else {
                    try s.skipValue()
                }
            }
        }

        static func scanUsage(_ s: inout JSONScanner) throws(JSONError) -> Usage {
            var prompt: Int64 = 0, completion: Int64 = 0
            var total: Int64?
            try s.beginObject()
            while let key = try s.nextKey() {
                if key == "prompt_tokens" {
                    prompt = try s.readIntOrNull() ?? 0
                } else if key == "completion_tokens" {
                    completion = try s.readIntOrNull() ?? 0
                } else if key == "total_tokens" {
                    total = try s.readIntOrNull()
                } else {
                    try s.skipValue()
                }
            }
            return Usage(promptTokens: Int(prompt), completionTokens: Int(completion), totalTokens: Int(total ?? prompt &+ completion))
        }
    }
}
