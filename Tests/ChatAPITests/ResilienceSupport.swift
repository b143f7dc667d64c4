import Foundation

extension MockUpstream {
    /// Makes requests carrying `X-Mock-Tag: tag` fail (or stall) as `fault` says (PUT /faults/{tag}).
    func setFault(_ tag: String, _ fault: [String: Any]) throws {
        let r = try HTTPClient.request(port: port, method: "PUT", path: "/faults/\(tag)", headers: ["Content-Type": "application/json"],
                                       body: jsonBytes(fault))
        guard r.status == 204 else { throw HarnessError.io("PUT /faults/\(tag): \(r.status) \(r.text)") }
    }

    func clearFaults() throws {
        let r = try HTTPClient.request(port: port, method: "DELETE", path: "/faults")
        guard r.status == 204 else { throw HarnessError.io("DELETE /faults: \(r.status)") }
    }

    /// The logged requests of one tag, oldest first.
    func requests(tag: String) throws -> [[String: Any]] {
        let r = try HTTPClient.get(port: port, "/requests?tag=\(tag)", timeout: 5)
        guard r.status == 200, let list = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [[String: Any]] else {
            throw HarnessError.io("GET /requests?tag=\(tag): \(r.status) \(r.text)")
        }
        return list
    }

    func calls(_ tag: String) -> Int { (try? requests(tag: tag).count) ?? -1 }
}

/// `attempts` of a `done` event as (deployment, outcome, status).
func attemptList(_ done: [String: Any]?) -> [String] {
    ((done?["attempts"] as? [[String: Any]]) ?? []).map { a in
        let status = (a["status"] as? Int).map { ":\($0)" } ?? ""
        return "\(a["deployment"] as? String ?? "?"):\(a["outcome"] as? String ?? "?")\(status)"
    }
}
