import Testing
import JSONCore
import Providers
@testable import ChatAPI

/// How a /v1/messages body becomes the provider-neutral request, and how each thing this surface
/// does not relay is refused: in Anthropic's error shape, with the field named first in the
/// message (`max_tokens: Field required`).
@Suite struct AnthropicRequestTests {
    static func parse(_ json: String, requireMaxTokens: Bool = true) throws(ClientError) -> AnthropicMessagesBody {
        guard let value = try? JSONParser.parse(json) else { throw ClientError.invalid("test JSON does not parse", param: nil) }
        return try AnthropicMessagesBody(value, defaultModel: "mock-echo", requireMaxTokens: requireMaxTokens)
    }

    /// The param of the error `json` gets, or nil when it is accepted.
    static func refusal(_ json: String, requireMaxTokens: Bool = true) -> String? {
        do {
            _ = try parse(json, requireMaxTokens: requireMaxTokens)
            return nil
        } catch {
            #expect(error.status == 400 && error.type == "invalid_request", "\(json)")
            return error.param ?? "(no param)"
        }
    }

    @Test func aFullRequestReadsEveryField() throws {
        let b = try Self.parse("""
            {"model":"claude-sonnet-4-6","max_tokens":256,"stream":true,
             "system":[{"type":"text","text":"You are terse."},{"type":"text","text":" Really.","cache_control":{"type":"ephemeral"}}],
             "messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"text","text":"Hello."}]},
                         {"role":"user","content":[{"type":"text","text":"How are "},{"type":"text","text":"you?"}]}],
             "temperature":0.5,"top_p":0.9,"top_k":40,"stop_sequences":["###"],"metadata":{"user_id":"u-1"},
             "fallbacks":["gpt-5.4-mini"],"thinking":null,"tools":[]}
            """)
        let r = b.request
        #expect(r.model == "claude-sonnet-4-6")
        #expect(r.maxTokens == 256)
        #expect(r.system == "You are terse. Really.")
        #expect(r.messages == [ChatMessage(role: .user, content: "Hi"), ChatMessage(role: .assistant, content: "Hello."),
                               ChatMessage(role: .user, content: "How are you?")])
        #expect(r.temperature == 0.5 && r.topP == 0.9 && r.topK == 40)
        #expect(r.stop == ["###"])
        #expect(b.stream)
        #expect(b.fallbacks == ["gpt-5.4-mini"])
        #expect(b.lastUserText == "How are you?")
    }

    @Test func defaultsWhenOptionalFieldsAreAbsent() throws {
        let b = try Self.parse(#"{"max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#)
        #expect(b.request.model == "mock-echo")
        #expect(b.request.system == nil && b.request.temperature == nil && b.request.topK == nil && b.request.stop == nil)
        #expect(!b.stream)
        #expect(b.fallbacks == nil)
    }

    @Test func maxTokensIsRequiredExceptToCountTokens() {
        #expect(Self.refusal(#"{"messages":[{"role":"user","content":"x"}]}"#) == "max_tokens")
        #expect(Self.refusal(#"{"max_tokens":null,"messages":[{"role":"user","content":"x"}]}"#) == "max_tokens")
        #expect(Self.refusal(#"{"max_tokens":0,"messages":[{"role":"user","content":"x"}]}"#) == "max_tokens")
        #expect(Self.refusal(#"{"max_tokens":"9","messages":[{"role":"user","content":"x"}]}"#) == "max_tokens")
        #expect(Self.refusal(#"{"messages":[{"role":"user","content":"x"}]}"#, requireMaxTokens: false) == nil)
    }

    @Test func messagesMustBeANonEmptyListStartingWithTheUser() {
        #expect(Self.refusal(#"{"max_tokens":5}"#) == "messages")
        #expect(Self.refusal(#"{"max_tokens":5,"messages":[]}"#) == "messages")
        #expect(Self.refusal(#"{"max_tokens":5,"messages":"hi"}"#) == "messages")
        #expect(Self.refusal(#"{"max_tokens":5,"messages":["hi"]}"#) == "messages.0")
        #expect(Self.refusal(#"{"max_tokens":5,"messages":[{"role":"assistant","content":"x"},{"role":"user","content":"y"}]}"#) == "messages.0.role")
    }

    @Test func consecutiveUserMessagesAreAccepted() throws {
        let b = try Self.parse(#"{"max_tokens":5,"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}"#)
        #expect(b.request.messages.map(\.role) == [.user, .user])
        #expect(b.lastUserText == "b")
    }

    @Test func onlyUserAndAssistantRoles() {
        for role in ["system", "developer", "tool", "User", ""] {
            #expect(Self.refusal(#"{"max_tokens":5,"messages":[{"role":"user","content":"a"},{"role":"\#(role)","content":"b"}]}"#) == "messages.1.role",
                    "\(role)")
        }
        #expect(Self.refusal(#"{"max_tokens":5,"messages":[{"content":"a"}]}"#) == "messages.0.role")
        #expect(Self.refusal(#"{"max_tokens":5,"messages":[{"role":7,"content":"a"}]}"#) == "messages.0.role")
    }

    @Test func nonTextBlocksAreRefusedNamingTheBlock() {
        for type in ["image", "document", "tool_use", "tool_result", "thinking", "search_result"] {
            let json = #"{"max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"\#(type)","source":{}}]}]}"#
            #expect(Self.refusal(json) == "messages.0.content.1.type", "\(type)")
        }
        #expect(Self.refusal(#"{"max_tokens":5,"system":[{"type":"image"}],"messages":[{"role":"user","content":"a"}]}"#) == "system.0.type")
        #expect(Self.refusal(#"{"max_tokens":5,"messages":[{"role":"user","content":[{"type":"text"}]}]}"#) == "messages.0.content.0.text")
        #expect(Self.refusal(#"{"max_tokens":5,"messages":[{"role":"user","content":[{"text":"a"}]}]}"#) == "messages.0.content.0.type")
        #expect(Self.refusal(#"{"max_tokens":5,"messages":[{"role":"user","content":5}]}"#) == "messages.0.content")
        #expect(Self.refusal(#"{"max_tokens":5,"messages":[{"role":"user"}]}"#) == "messages.0.content")
    }

    @Test func emptyContentOnlyInAFinalAssistantPrefill() throws {
        #expect(Self.refusal(#"{"max_tokens":5,"messages":[{"role":"user","content":""}]}"#) == "messages.0.content")
        #expect(Self.refusal(#"{"max_tokens":5,"messages":[{"role":"user","content":[]}]}"#) == "messages.0.content")
        let prefill = try Self.parse(#"{"max_tokens":5,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":""}]}"#)
        #expect(prefill.request.messages.count == 2)
    }

    @Test func toolsAndToolChoiceAreRefused() {
        #expect(Self.refusal(#"{"max_tokens":5,"tools":[{"name":"get_weather","input_schema":{}}],"messages":[{"role":"user","content":"a"}]}"#) == "tools")
        #expect(Self.refusal(#"{"max_tokens":5,"tool_choice":{"type":"auto"},"messages":[{"role":"user","content":"a"}]}"#) == "tool_choice")
        #expect(Self.refusal(#"{"max_tokens":5,"tools":[],"messages":[{"role":"user","content":"a"}]}"#) == nil)
    }

    @Test func samplingStopsAndMetadataAreChecked() {
        let base = #""max_tokens":5,"messages":[{"role":"user","content":"a"}]"#
        #expect(Self.refusal("{\(base),\"temperature\":1.5}") == "temperature")
        #expect(Self.refusal("{\(base),\"top_p\":-0.1}") == "top_p")
        #expect(Self.refusal("{\(base),\"top_k\":0}") == "top_k")
        #expect(Self.refusal("{\(base),\"stop_sequences\":\"###\"}") == "stop_sequences")
        #expect(Self.refusal("{\(base),\"stop_sequences\":[\"\"]}") == "stop_sequences.0")
        #expect(Self.refusal("{\(base),\"metadata\":\"u\"}") == "metadata")
        #expect(Self.refusal("{\(base),\"metadata\":{\"user_id\":5}}") == "metadata.user_id")
        #expect(Self.refusal("{\(base),\"stream\":\"yes\"}") == "stream")
        #expect(Self.refusal("{\(base),\"fallbacks\":\"gpt-5.4-mini\"}") == "fallbacks")
        #expect(Self.refusal("{\(base),\"system\":5}") == "system")
        #expect(Self.refusal("{\(base),\"model\":5}") == "model")
        #expect(Self.refusal(#"{"max_tokens":5,"messages":[{"role":"user","content":"a\u0000b"}]}"#) == "messages.0.content")
    }

    @Test func anthropicShapedMessagesNameTheFieldFirst() {
        #expect(AnthropicWire.message("Field required", param: "max_tokens") == "max_tokens: Field required")
        #expect(AnthropicWire.message("max_tokens must be an integer from 1 to 1000000", param: "max_tokens")
                == "max_tokens must be an integer from 1 to 1000000")
        #expect(AnthropicWire.message("invalid API key", param: nil) == "invalid API key")
        let body = String(decoding: AnthropicWire.errorBody("invalid_request_error", message: "tools: no"), as: UTF8.self)
        #expect(body == #"{"type":"error","error":{"type":"invalid_request_error","message":"tools: no"}}"#)
        #expect(AnthropicWire.errorType(401) == "authentication_error")
        #expect(AnthropicWire.errorType(403) == "permission_error")
        #expect(AnthropicWire.errorType(404) == "not_found_error")
        #expect(AnthropicWire.errorType(413) == "request_too_large")
        #expect(AnthropicWire.errorType(500) == "api_error")
        #expect(AnthropicWire.errorType(503) == "overloaded_error")
    }

    @Test func inputTokenEstimates() {
        let request = ChatRequest(model: "m", system: "be brief", messages: [ChatMessage(role: .user, content: "one two three")])
        // The mock's own count: words.
        #expect(InputTokenEstimate.count(request, kind: .mock) == 5)
        // Others: ⌈bytes / 4⌉ per text plus 3 per message.
        #expect(InputTokenEstimate.count(request, kind: .anthropic) == 2 + 3 + 4)
        #expect(InputTokenEstimate.count(request, kind: .openai) == InputTokenEstimate.count(request, kind: .gemini))
    }
}
