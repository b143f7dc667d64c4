import HTTP
import JSONCore

/// The parts of one provider's streaming wire format the mock needs: what goes before the tokens,
/// each token, the ending (with and without its terminator), a mid-stream error and HTTP errors.
/// Exact bytes per docs/wire-formats.md.
protocol MockWireFormat {
    var contentType: String { get }
    var requestIDHeader: String { get }
    func preamble(model: String, promptTokens: Int) -> [[UInt8]]
    func token(_ text: String, index: Int, model: String, promptTokens: Int) -> [UInt8]
    /// Final events; `terminated: false` leaves out what marks a complete stream.
    func ending(model: String, promptTokens: Int, completionTokens: Int, terminated: Bool) -> [[UInt8]]
    func midstreamError() -> [UInt8]
    func httpError(status: Int, message: String) -> (headers: HTTPHeaders, body: [UInt8])
    /// A whole non-streamed answer.
    func complete(text: String, model: String, promptTokens: Int, completionTokens: Int) -> [UInt8]
}

extension MockWireFormat {
    func jsonString(_ s: String) -> String {
        var out: [UInt8] = []
        JSON.appendString(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
