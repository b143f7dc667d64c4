import HTTP
import Reactor

/// OpenAI Chat Completions streaming: data-only events, LF framing, usage chunk with
/// `choices: []` when asked for, then `data: [DONE]` (docs/wire-formats.md §2.3). Also serves Azure's
/// leading prompt-filter chunk and the `[mock quirk=…]` deviations of compatible servers.
struct OpenAIFormat: MockWireFormat {
    let id: String
    let created: Int64
    let includeUsage: Bool
    var quirks: Set<MockDirectives.Quirk> = []
    /// Azure sends its prompt's content-filter verdict first, in a chunk with no choices and an
    /// empty model.
    var promptFilterChunk = false
    let contentType = "text/event-stream; charset=utf-8"
    let requestIDHeader = "x-request-id"

    /// A server that never reports usage does not send the `usage: null` placeholders either.
    private var usagePlaceholders: Bool { includeUsage && !quirks.contains(.noUsage) }

    private func prefix(_ model: String) -> String {
        #"{"id":"\#(id)","object":"chat.completion.chunk","created":\#(created),"model":\#(jsonString(model)),"service_tier":"default","system_fingerprint":null,"choices":"#
    }
    private var usageTail: String { usagePlaceholders ? #","usage":null"# : "" }

    private func event(_ json: String) -> [UInt8] { Array("data: \(json)\n\n".utf8) }

    func preamble(model: String, promptTokens: Int) -> [[UInt8]] {
        var out: [[UInt8]] = []
        if promptFilterChunk {
            out.append(event(#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#))
        }
        out.append(event("\(prefix(model))[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"finish_reason\":null}]\(usageTail),\"obfuscation\":\"Wu\"}"))
        if quirks.contains(.emptyChoices) {
            out.append(event("\(prefix(model))[]\(usageTail),\"obfuscation\":\"e0\"}"))
        }
        if quirks.contains(.reasoning) {
            for thought in ["Let me think. ", "Done thinking. "] {
                out.append(event("\(prefix(model))[{\"index\":0,\"delta\":{\"reasoning_content\":\(jsonString(thought))},\"finish_reason\":null}]\(usageTail),\"obfuscation\":\"r1\"}"))
            }
        }
        return out
    }

    func token(_ text: String, index: Int, model: String, promptTokens: Int) -> [UInt8] {
        event("\(prefix(model))[{\"index\":0,\"delta\":{\"content\":\(jsonString(text))},\"finish_reason\":null}]\(usageTail),\"obfuscation\":\"k0\"}")
    }

    func ending(model: String, promptTokens: Int, completionTokens: Int, terminated: Bool) -> [[UInt8]] {
        let usage = "\"usage\":{\"prompt_tokens\":\(promptTokens),\"completion_tokens\":\(completionTokens),\"total_tokens\":\(promptTokens + completionTokens),\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}"
        let noUsage = quirks.contains(.noUsage)
        let usageInLast = !noUsage && quirks.contains(.usageInLast)
        let finishUsage = usageInLast ? ",\(usage)" : usageTail
        var out = [event("\(prefix(model))[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]\(finishUsage),\"obfuscation\":\"XQ\"}")]
        if includeUsage && !noUsage && !usageInLast {
            out.append(event("\(prefix(model))[],\(usage),\"obfuscation\":\"t9\"}"))
        }
        if terminated && !quirks.contains(.noDone) { out.append(event("[DONE]")) }
        return out
    }

    func midstreamError() -> [UInt8] {
        Array(#"data: {"error":{"message":"The server had an error processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#.utf8) + Array("\n\n".utf8)
    }

    func httpError(status: Int, message: String) -> (headers: HTTPHeaders, body: [UInt8]) {
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json; charset=utf-8")
        let (type, code): (String, String) = {
            switch status {
            case 429: return ("tokens", "rate_limit_exceeded")
            case 401: return ("invalid_request_error", "invalid_api_key")
            case 400: return ("invalid_request_error", "invalid_value")
            case 503: return ("service_unavailable_error", "server_is_overloaded")
            default: return ("server_error", "server_error")
            }
        }()
        if status == 429 { h.add("retry-after", "1"); h.add("x-ratelimit-reset-tokens", "84ms") }
        // OpenAI pretty-prints error bodies with a 4-space indent and a trailing newline.
        let body = "{\n    \"error\": {\n        \"message\": \(jsonString(message)),\n        \"type\": \"\(type)\",\n        \"param\": null,\n        \"code\": \"\(code)\"\n    }\n}\n"
        return (h, Array(body.utf8))
    }

    func badRequest(message: String, param: String?, code: String) -> [UInt8] {
        let p = param.map { jsonString($0) } ?? "null"
        return Array("{\n    \"error\": {\n        \"message\": \(jsonString(message)),\n        \"type\": \"invalid_request_error\",\n        \"param\": \(p),\n        \"code\": \"\(code)\"\n    }\n}\n".utf8)
    }

    func complete(text: String, model: String, promptTokens: Int, completionTokens: Int) -> [UInt8] {
        Array(#"{"id":"\#(id)","object":"chat.completion","created":\#(created),"model":\#(jsonString(model)),"choices":[{"index":0,"message":{"role":"assistant","content":\#(jsonString(text)),"refusal":null,"annotations":[]},"finish_reason":"stop"}],"usage":{"prompt_tokens":\#(promptTokens),"completion_tokens":\#(completionTokens),"total_tokens":\#(promptTokens + completionTokens)},"service_tier":"default","system_fingerprint":null}"#.utf8)
    }
}
