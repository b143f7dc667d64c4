import Testing
import Providers

@Suite struct ErrorMappingTests {
    @Test func openAI429() throws {
        let e = OpenAIErrors.mapHTTPError(status: 429, headers: [("Retry-After", "1")], body: try Fixtures.bytes("openai-429.json"))
        #expect(e.kind == .rateLimited)
        #expect(e.apiType == "rate_limited")
        #expect(e.httpStatus == 429)
        #expect(e.providerCode == "rate_limit_exceeded")
        #expect(e.providerType == "tokens")
        #expect(e.retryAfter == 1)
        #expect(e.message.hasPrefix("Rate limit reached for gpt-4o-mini"))
        #expect(e.upstreamStatus == 429)
    }

    @Test func anthropic429() throws {
        let e = AnthropicErrors.mapHTTPError(status: 429, headers: [("retry-after-ms", "1500"), ("retry-after", "9")], body: try Fixtures.bytes("anthropic-429.json"))
        #expect(e.kind == .rateLimited)
        #expect(e.providerType == "rate_limit_error")
        #expect(e.retryAfter == 1.5)
        #expect(e.message.hasPrefix("This request would exceed the rate limit"))
    }

    @Test func gemini429() throws {
        let e = GeminiErrors.mapHTTPError(status: 429, headers: [], body: try Fixtures.bytes("gemini-429.json"))
        #expect(e.kind == .rateLimited)
        #expect(e.apiType == "rate_limited")
        #expect(e.retryAfter == 23)
        #expect(e.providerType == "RESOURCE_EXHAUSTED")
    }

    @Test func classifiesOtherShapes() {
        let quota = OpenAIErrors.mapHTTPError(status: 429, headers: [], body: Array(#"{"error":{"message":"q","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#.utf8))
        #expect(quota.kind == .quotaExceeded)
        let overloaded = AnthropicErrors.mapHTTPError(status: 529, headers: [], body: Array(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.utf8))
        #expect(overloaded.kind == .overloaded)
        #expect(overloaded.httpStatus == 503)
        let badKey = GeminiErrors.mapHTTPError(status: 400, headers: [], body: Array(#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#.utf8))
        #expect(badKey.kind == .unauthorized)
        #expect(badKey.httpStatus == 502)
        let notFound = OpenAIErrors.mapHTTPError(status: 404, headers: [], body: Array(#"{"error":{"message":"nope","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#.utf8))
        #expect(notFound.apiType == "invalid_request")
        #expect(notFound.param == "model")
        #expect(GeminiErrors.mapHTTPError(status: 504, headers: [], body: []).apiType == "upstream_timeout")
    }

    @Test(arguments: [ProviderKind.openai, .anthropic, .gemini])
    func unreadableBodiesStillGiveClearErrors(_ provider: ProviderKind) {
        let e = UpstreamRequests.mapHTTPError(provider: provider, status: 502, headers: [], body: Array("<html>Bad Gateway</html>".utf8))
        #expect(e.kind == .upstreamError)
        #expect(e.upstreamStatus == 502)
        #expect(e.message.contains("HTTP 502"))
        #expect(e.message.contains("Bad Gateway"))
        let e2 = UpstreamRequests.mapHTTPError(provider: provider, status: 429, headers: [("retry-after", "3")], body: [0xFF, 0x00])
        #expect(e2.kind == .rateLimited)
        #expect(e2.retryAfter == 3)
    }

    @Test func errorBodiesForOurClients() {
        var out: [UInt8] = []
        ProviderError(.rateLimited, "slow down", upstreamStatus: 429, retryAfter: 3).writeStreamErrorData(to: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"{"error":{"type":"rate_limited","message":"slow down","status":429,"retry_after":3}}"#)
        out = []
        ProviderError(.unknownModel, "unknown model 'x'", param: "model").writeResponseBody(to: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"{"error":{"type":"invalid_request","message":"unknown model 'x'","param":"model"}}"#)
    }
}
