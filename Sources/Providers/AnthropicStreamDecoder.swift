import JSONCore

/// Decodes Anthropic Messages SSE (docs/wire-formats.md §3.3): named events, `message_stop` at the end.
public struct AnthropicStreamDecoder: ProviderStreamDecoder {
    var core = SSEProviderDecoder<State>()

    public init() {}

    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (StreamEvent) -> Void) { core.feed(bytes, emit) }
    public mutating func finish(_ emit: (StreamEvent) -> Void) { core.finish(emit) }

    /// Usage arrives in pieces (message_start, then cumulative message_delta): later values win.
    struct UsageParts {
        var input: Int64?
        var cacheCreation: Int64?
        var cacheRead: Int64?
        var output: Int64?
        var seen = false

        /// §3.4: prompt = input + cache creation + cache read; completion = final output.
        var usage: Usage {
            let prompt = (input ?? 0) &+ (cacheCreation ?? 0) &+ (cacheRead ?? 0)
            let completion = output ?? 0
            return Usage(promptTokens: Int(prompt), completionTokens: Int(completion), totalTokens: Int(prompt &+ completion))
        }

        mutating func scan(_ s: inout JSONScanner) throws(JSONError) {
            try s.beginObject()
            seen = true
            while let key = try s.nextKey() {
                if key == "input_tokens" {
                    input = try s.readIntOrNull() ?? input
                } else if key == "cache_creation_input_tokens" {
                    cacheCreation = try s.readIntOrNull() ?? cacheCreation
                } else if key == "cache_read_input_tokens" {
                    cacheRead = try s.readIntOrNull() ?? cacheRead
                } else if key == "output_tokens" {
                    output = try s.readIntOrNull() ?? output
                } else {
                    try s.skipValue()
                }
            }
        }
    }

    struct State: SSEEventHandling {
        static let provider = ProviderKind.anthropic

        mutating func bodyEnded(_ emit: (StreamEvent) -> Void) {
            end.fail(StreamTermination.incomplete(.anthropic, expected: "message_stop"), emit)
        }

        var end = StreamTermination()
        var usage = UsageParts()

        mutating func handle(_ event: SSEEventView, _ emit: (StreamEvent) -> Void) {
            guard !end.isTerminated else { return }
            do throws(JSONError) {
                if event.isEvent("content_block_delta") {
                    if let text = try Self.deltaText(event.data), !text.isEmpty { emit(.text(text)) }
                } else if event.isEvent("message_start") {
                    try scanMessageStart(event.data)
                } else if event.isEvent("message_delta") {
                    if let reason = try scanMessageDelta(event.data) { emit(.finish(.anthropic(reason))) }
                } else if event.isEvent("message_stop") {
                    if usage.seen { emit(.usage(usage.usage)) }
                    end.done(emit)
                } else if event.isEvent("error") {
                    let value = try JSONParser.parse(event.data)
                    end.fail(AnthropicErrors.fromBody(value, status: nil), emit)
                }
                // ping, content_block_start/stop and event types added later carry nothing to relay.
            } catch {
                end.fail(StreamTermination.malformed(.anthropic, error.description), emit)
            }
        }

        /// `delta.text` of a `text_delta`; other delta kinds (thinking, tool input) are not relayed.
        static func deltaText(_ data: UnsafeRawBufferPointer) throws(JSONError) -> String? {
            var s = JSONScanner(data)
            var text: String?
            var isText = false
            try s.beginObject()
            while let key = try s.nextKey() {
                if key == "delta" {
                    try s.beginObject()
                    while let k = try s.nextKey() {
                        if k == "type" {
                            isText = try s.readString() == "text_delta"
                        } else if k == "text" {
                            text = try s.readString()
                        } else {
                            try s.skipValue()
                        }
                    }
                } else {
                    try s.skipValue()
                }
            }
            try s.finish()
            return isText ? text : nil
        }

        mutating func scanMessageStart(_ data: UnsafeRawBufferPointer) throws(JSONError) {
            var s = JSONScanner(data)
            try s.beginObject()
            while let key = try s.nextKey() {
                if key == "message" {
                    try s.beginObject()
                    while let k = try s.nextKey() {
                        if k == "usage" { try usage.scan(&s) } else { try s.skipValue() }
                    }
                } else {
                    try s.skipValue()
                }
            }
            try s.finish()
        }

        mutating func scanMessageDelta(_ data: UnsafeRawBufferPointer) throws(JSONError) -> String? {
            var s = JSONScanner(data)
            var reason: String?
            try s.beginObject()
            while let key = try s.nextKey() {
                if key == "delta" {
                    try s.beginObject()
                    while let k = try s.nextKey() {
                        if k == "stop_reason" { reason = try s.readStringOrNull() } else { try s.skipValue() }
                    }
                } else if key == "usage" {
                    try usage.scan(&s)
                } else {
                    try s.skipValue()
                }
            }
            try s.finish()
            return reason
        }
    }
}
