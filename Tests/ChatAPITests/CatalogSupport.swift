import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension MockUpstream {
    /// The model requests the mock logged, oldest first (GET /requests).
    func requests() throws -> [[String: Any]] {
        let r = try HTTPClient.get(port: port, "/requests", timeout: 5)
        guard r.status == 200, let list = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [[String: Any]] else {
            throw HarnessError.io("GET /requests: \(r.status) \(r.text)")
        }
        return list
    }

    func clearRequests() throws {
        let r = try HTTPClient.request(port: port, method: "DELETE", path: "/requests")
        guard r.status == 204 else { throw HarnessError.io("DELETE /requests: \(r.status)") }
    }

    /// The one logged request whose body mentions `marker`.
    func request(containing marker: String) throws -> [String: Any]? {
        try requests().last { entry in
            guard let body = entry["body"], let data = try? JSONSerialization.data(withJSONObject: body, options: [.fragmentsAllowed]) else { return false }
            return String(decoding: data, as: UTF8.self).contains(marker)
        }
    }
}

/// A models.yaml in a temporary folder that a test can rewrite between SIGHUPs.
final class CatalogFileFixture {
    let path: String

    init(_ yaml: String) throws {
        path = NSTemporaryDirectory() + "chatrelay-models-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).yaml"
        try write(yaml)
    }

    func write(_ yaml: String) throws {
        // Written whole and renamed, so a reload never reads half a file.
        let tmp = path + ".tmp"
        try yaml.write(toFile: tmp, atomically: false, encoding: .utf8)
        guard rename(tmp, path) == 0 else { throw HarnessError.setup("rename \(tmp)") }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

extension Relay {
    /// One streamed turn on /v1/chat/completions; the chunks' JSON, `[DONE]` left out.
    func openAIStream(_ model: String, _ text: String, includeUsage: Bool = true, key: String = "k1") throws -> (status: Int, chunks: [[String: Any]], done: Bool, body: String) {
        var body: [String: Any] = ["model": model, "stream": true, "messages": [["role": "user", "content": text]]]
        if includeUsage { body["stream_options"] = ["include_usage": true] }
        let s = try SSEClient(port: port, path: "/v1/chat/completions", headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"],
                              body: try JSONSerialization.data(withJSONObject: body), timeout: 20)
        let r = try s.readToEnd()
        let datas = r.events.map(\.data)
        let chunks = datas.filter { $0 != "[DONE]" }.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        return (r.status, chunks, datas.last == "[DONE]", String(decoding: r.body, as: UTF8.self))
    }

    /// GET /metrics as text.
    func metricsText() throws -> String { try get("/metrics", key: nil).text }
}

/// The text of OpenAI chunks, joined.
func chunkText(_ chunks: [[String: Any]]) -> String {
    chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }.joined()
}

/// The value of a metric sample line `name{labels} value` (or `name value`).
func metricValue(_ text: String, _ prefix: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
        if let v = line.split(separator: " ").last.flatMap({ Double($0) }) { return v }
    }
    return nil
}
