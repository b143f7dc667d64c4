import HTTP

/// Gemini `streamGenerateContent?alt=sse`: data-only events with CRLF framing, one whole
/// GenerateContentResponse per event, cumulative usageMetadata, a final chunk carrying
/// `finishReason`, and no [DONE]: the body just ends (docs/wire-formats.md §4.3).
struct GeminiFormat: MockWireFormat {
    let responseID: String
    let contentType = "text/event-stream"
    let requestIDHeader = "x-goog-request-id"

    private func usage(_ p: Int, _ c: Int) -> String {
        #""usageMetadata": {"promptTokenCount": \#(p),"candidatesTokenCount": \#(c),"totalTokenCount": \#(p + c),"promptTokensDetails": [{"modality": "TEXT","tokenCount": \#(p)}]}"#
    }
    private func event(_ json: String) -> [UInt8] { Array("data: \(json)\r\n\r\n".utf8) }

    func preamble(model: String, promptTokens: Int) -> [[UInt8]] { [] }

    func token(_ text: String, index: Int, model: String, promptTokens: Int) -> [UInt8] {
        event(#"{"candidates": [{"content": {"parts": [{"text": \#(jsonString(text))}],"role": "model"},"index": 0}],\#(usage(promptTokens, index + 1)),"modelVersion": \#(jsonString(model)),"responseId": "\#(responseID)"}"#)
    }

    func ending(model: String, promptTokens: Int, completionTokens: Int, terminated: Bool) -> [[UInt8]] {
        // The finish chunk is Gemini's only "terminator": without it the stream is incomplete.
        guard terminated else { return [] }
        return [event(#"{"candidates": [{"content": {"role": "model"},"finishReason": "STOP","index": 0}],\#(usage(promptTokens, completionTokens)),"modelVersion": \#(jsonString(model)),"responseId": "\#(responseID)"}"#)]
    }

    func midstreamError() -> [UInt8] {
        event(#"{"error": {"code": 500,"message": "An internal error has occurred.","status": "INTERNAL"}}"#)
    }

    func httpError(status: Int, message: String) -> (headers: HTTPHeaders, body: [UInt8]) {
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json; charset=UTF-8")
        let statusName: String = {
            switch status {
            case 400: return "INVALID_ARGUMENT"
            case 403: return "PERMISSION_DENIED"
            case 429: return "RESOURCE_EXHAUSTED"
            case 503: return "UNAVAILABLE"
            default: return "INTERNAL"
            }
        }()
        var details = ""
        if status == 429 {
            details = ",\n    \"details\": [\n      {\n        \"@type\": \"type.googleapis.com/google.rpc.RetryInfo\",\n        \"retryDelay\": \"3s\"\n      }\n    ]"
        }
        let body = "{\n  \"error\": {\n    \"code\": \(status),\n    \"message\": \(jsonString(message)),\n    \"status\": \"\(statusName)\"\(details)\n  }\n}\n"
        return (h, Array(body.utf8))
    }

    func complete(text: String, model: String, promptTokens: Int, completionTokens: Int) -> [UInt8] {
        Array(#"{"candidates": [{"content": {"parts": [{"text": \#(jsonString(text))}],"role": "model"},"finishReason": "STOP","index": 0}],\#(usage(promptTokens, completionTokens)),"modelVersion": \#(jsonString(model)),"responseId": "\#(responseID)"}"#.utf8)
    }
}
