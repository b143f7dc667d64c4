import HTTP

/// Anthropic Messages streaming: named events, a `ping`, cumulative usage in `message_delta`,
/// `message_stop` at the end; a mid-stream `event: error` ends the stream (docs/wire-formats.md §3.3).
struct AnthropicFormat: MockWireFormat {
    let id: String
    let contentType = "text/event-stream"
    let requestIDHeader = "request-id"

    private func event(_ name: String, _ data: String) -> [UInt8] { Array("event: \(name)\ndata: \(data)\n\n".utf8) }

    func preamble(model: String, promptTokens: Int) -> [[UInt8]] {
        [
            event("message_start", #"{"type":"message_start","message":{"model":\#(jsonString(model)),"id":"\#(id)","type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":\#(promptTokens),"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard","inference_geo":"not_available"}}}"#),
            event("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
            event("ping", #"{"type": "ping"}"#),
        ]
    }

    func token(_ text: String, index: Int, model: String, promptTokens: Int) -> [UInt8] {
        event("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":\#(jsonString(text))}}"#)
    }

    func ending(model: String, promptTokens: Int, completionTokens: Int, terminated: Bool) -> [[UInt8]] {
        var out = [
            event("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
            event("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":\#(promptTokens),"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":\#(completionTokens)}}"#),
        ]
        if terminated { out.append(event("message_stop", #"{"type":"message_stop"}"#)) }
        return out
    }

    func midstreamError() -> [UInt8] {
        event("error", #"{"type":"error","error":{"details":null,"type":"overloaded_error","message":"Overloaded"} }"#)
    }

    func httpError(status: Int, message: String) -> (headers: HTTPHeaders, body: [UInt8]) {
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json")
        let type: String = {
            switch status {
            case 400: return "invalid_request_error"
            case 401: return "authentication_error"
            case 429: return "rate_limit_error"
            case 529: return "overloaded_error"
            default: return "api_error"
            }
        }()
        if status == 429 || status == 529 { h.add("retry-after", "2") }
        return (h, Array(#"{"type":"error","error":{"type":"\#(type)","message":\#(jsonString(message))},"request_id":"req_mock\#(id)"}"#.utf8))
    }

    func complete(text: String, model: String, promptTokens: Int, completionTokens: Int) -> [UInt8] {
        Array(#"{"id":"\#(id)","type":"message","role":"assistant","model":\#(jsonString(model)),"content":[{"type":"text","text":\#(jsonString(text))}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":\#(promptTokens),"output_tokens":\#(completionTokens)}}"#.utf8)
    }
}
