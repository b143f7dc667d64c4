import JSONCore
import Providers
import Reactor

/// The response cache's key: the SHA-256 of the canonical request, that is every input that
/// changes the answer (the public model name, system prompt, messages and sampling parameters)
/// written as JSON in a fixed order. Which API surface asked does not change the answer, so an
/// answer cached through one is a hit through another.
struct CacheKey: Hashable {
    let digest: [UInt8]

    init(_ r: ChatRequest, model: String) {
        var w = JSONWriter()
        w.beginObject()
        w.field("model", model)
        w.field("system", r.system)
        w.key("messages")
        w.beginArray()
        for m in r.messages {
            w.beginObject()
            w.field("role", m.role.rawValue)
            w.field("content", m.content)
            w.endObject()
        }
        w.endArray()
        w.field("max_tokens", r.maxTokens)
        w.key("temperature")
        if let t = r.temperature { w.double(t) } else { w.null() }
        w.key("top_p")
        if let p = r.topP { w.double(p) } else { w.null() }
        w.field("top_k", r.topK)
        w.key("stop")
        if let stop = r.stop {
            w.beginArray()
            for s in stop { w.string(s) }
            w.endArray()
        } else {
            w.null()
        }
        w.endObject()
        digest = Crypto.sha256(String(decoding: w.bytes, as: UTF8.self))
    }
}
