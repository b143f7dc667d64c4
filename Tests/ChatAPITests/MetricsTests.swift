import Foundation
import Testing

/// One scrape of /metrics, parsed into samples (name, labels, value).
struct Scrape {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }
    var text: String
    var samples: [Sample] = []

    init(_ text: String) {
        self.text = text
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = line[..<space]
            var labels: [String: String] = [:]
            var name = String(series)
            if let brace = series.firstIndex(of: "{") {
                name = String(series[..<brace])
                let body = series[series.index(after: brace)..<series.index(before: series.endIndex)]
                // Label values in these tests hold no commas or quotes.
                for pair in body.split(separator: ",") {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    guard kv.count == 2 else { continue }
                    labels[String(kv[0])] = String(kv[1].dropFirst().dropLast())
                }
            }
            samples.append(Sample(name: name, labels: labels, value: value))
        }
    }

    /// The sum over every series of `name` whose labels include `labels`.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { s in s.name == name && labels.allSatisfy { s.labels[$0.key] == $0.value } }.reduce(0) { $0 + $1.value }
    }

    static func get(_ relay: Relay, token: String? = nil) throws -> Scrape {
        let r = try HTTPClient.request(port: relay.port, method: "GET", path: "/metrics",
                                       headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
        guard r.status == 200 else { throw HarnessError.io("GET /metrics: \(r.status) \(r.text)") }
        return Scrape(r.text)
    }
}

/// `gw;dur=1.234` (and optional further metrics) as the Server-Timing header carries it.
func serverTimingMillis(_ header: String?, _ metric: String) -> Double? {
    guard let header else { return nil }
    for part in header.split(separator: ",") {
        let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard fields.first == metric else { continue }
        for f in fields.dropFirst() where f.hasPrefix("dur=") { return Double(f.dropFirst(4)) }
    }
    return nil
}

extension ChatAPIEndToEnd {
    @Suite(.serialized) struct Metrics {
        static let families: [(String, String)] = [
            ("chatrelay_http_requests_total", "counter"), ("chatrelay_http_request_duration_seconds", "histogram"),
            ("chatrelay_open_connections", "gauge"), ("chatrelay_open_streams", "gauge"),
            ("chatrelay_upstream_requests_total", "counter"), ("chatrelay_time_to_first_token_seconds", "histogram"),
            ("chatrelay_tokens_relayed_total", "counter"), ("chatrelay_db_pool_connections", "gauge"),
            ("chatrelay_db_pool_queue_length", "gauge"), ("chatrelay_db_pool_wait_seconds", "histogram"),
            ("chatrelay_draining", "gauge"), ("chatrelay_build_info", "gauge"), ("chatrelay_workers", "gauge"),
            ("chatrelay_log_lines_dropped_total", "counter"),
            ("process_resident_memory_bytes", "gauge"), ("process_open_fds", "gauge"), ("process_start_time_seconds", "gauge"),
        ]

        @Test func everyFamilyHasHelpAndType() throws {
            let relay = try Shared.relay.get()
            let r = try HTTPClient.request(port: relay.port, method: "GET", path: "/metrics")
            #expect(r.status == 200)
            #expect(r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
            for (name, type) in Metrics.families {
                #expect(r.text.contains("# HELP \(name) "), "no HELP for \(name)")
                #expect(r.text.contains("# TYPE \(name) \(type)\n"), "no TYPE \(type) for \(name)")
            }
            let s = Scrape(r.text)
            #expect(s.value("chatrelay_workers") == 1)
            #expect(s.value("chatrelay_build_info", ["version": "0.1.0"]) == 1)
            #expect(s.value("chatrelay_draining") == 0)
            #expect(s.value("process_resident_memory_bytes") > 0)
            #expect(s.value("process_open_fds") > 0)
            #expect(s.value("process_start_time_seconds") > 1_700_000_000)
            #expect(s.value("chatrelay_db_pool_connections", ["state": "idle"]) >= 1)
            // Histograms are cumulative and end in +Inf == _count.
            let buckets = s.samples.filter { $0.name == "chatrelay_db_pool_wait_seconds_bucket" }
            #expect(buckets.count == 16)
            #expect(zip(buckets, buckets.dropFirst()).allSatisfy { $0.value <= $1.value })
            #expect(buckets.last?.labels["le"] == "+Inf")
            #expect(buckets.last?.value == s.value("chatrelay_db_pool_wait_seconds_count"))
        }

        @Test func countersMoveWithRequests() throws {
            let relay = try Shared.relay.get()
            let before = try Scrape.get(relay)
            let missing = try relay.get("/api/v1/conversations/00000000-0000-4000-8000-000000000000")
            #expect(missing.status == 404)
            let unknown = try relay.get("/no/such/route")
            #expect(unknown.status == 404)
            let chat = try relay.chat(["message": "[mock tokens=5]", "model": "gpt-4.1"])
            #expect(chat.first("done") != nil)
            let after = try Scrape.get(relay)

            func delta(_ name: String, _ labels: [String: String]) -> Double { after.value(name, labels) - before.value(name, labels) }
            #expect(delta("chatrelay_http_requests_total", ["route": "/api/v1/conversations/{id}", "method": "GET", "status": "404"]) == 1)
            #expect(delta("chatrelay_http_requests_total", ["route": "unmatched", "status": "404"]) == 1)
            #expect(delta("chatrelay_http_requests_total", ["route": "/api/v1/chat", "method": "POST", "status": "200"]) == 1)
            #expect(delta("chatrelay_http_requests_total", ["route": "/metrics", "status": "200"]) >= 1)
            #expect(delta("chatrelay_http_request_duration_seconds_count", ["route": "/api/v1/chat"]) == 1)
            #expect(delta("chatrelay_upstream_requests_total", ["provider": "openai", "outcome": "complete"]) == 1)
            #expect(delta("chatrelay_tokens_relayed_total", ["provider": "openai"]) == 5)
            #expect(delta("chatrelay_time_to_first_token_seconds_count", ["provider": "openai"]) == 1)
            #expect(delta("chatrelay_time_to_first_token_seconds_bucket", ["provider": "openai", "le": "+Inf"]) == 1)
            #expect(delta("chatrelay_db_pool_wait_seconds_count", [:]) >= 1)
            // No label carries a raw path.
            #expect(!after.text.contains("00000000-0000-4000"))
            #expect(!after.text.contains("/no/such/route"))
        }

        @Test func upstreamRefusalCountsAsRejected() throws {
            let relay = try Shared.relay.get()
            let before = try Scrape.get(relay)
            let refused = try relay.chat(["message": "[mock fault=429]", "model": "gpt-4.1"])
            #expect(refused.status == 429)
            let after = try Scrape.get(relay)
            let labels = ["provider": "openai", "outcome": "rejected"]
            #expect(after.value("chatrelay_upstream_requests_total", labels) - before.value("chatrelay_upstream_requests_total", labels) == 1)
        }

        @Test func tokenProtectsMetrics() throws {
            let token = "metrics-token-0123456789"
            let relay = try Relay(mock: nil, ["CHAT_METRICS_TOKEN": token, "CORS_ORIGINS": "https://a.example"])
            let none = try relay.get("/metrics", key: nil)
            #expect(none.status == 401)
            #expect(none.errorType == "unauthorized")
            #expect(none.header("WWW-Authenticate") == "Bearer")
            let wrong = try relay.get("/metrics", key: "metrics-token-0123456780")
            #expect(wrong.status == 401)
            #expect(wrong.errorType == "unauthorized")
            // A client API key is not the metrics token.
            #expect(try relay.get("/metrics", key: Relay.keys[0]).status == 401)
            let ok = try relay.get("/metrics", key: token)
            #expect(ok.status == 200)
            #expect(ok.text.contains("# TYPE chatrelay_http_requests_total counter"))
            #expect(serverTimingMillis(none.header("Server-Timing"), "gw") != nil)
            // A CORS pre-flight is answered before routing, and timed all the same.
            let preflight = try HTTPClient.request(port: relay.port, method: "OPTIONS", path: "/api/v1/chat",
                                                   headers: ["Origin": "https://a.example", "Access-Control-Request-Method": "POST"])
            #expect(preflight.status == 204)
            #expect(serverTimingMillis(preflight.header("Server-Timing"), "gw") != nil, "\(preflight.headers)")
            // A pre-flight is labelled with its path's route pattern, not `unmatched`.
            let s = try Scrape.get(relay, token: token)
            #expect(s.value("chatrelay_http_requests_total", ["route": "/api/v1/chat", "method": "OPTIONS", "status": "204"]) == 1)
        }

        @Test func serverTimingOnEveryKindOfResponse() throws {
            let relay = try Shared.relay.get()
            let health = try relay.get("/api/v1/health", key: nil)
            #expect(serverTimingMillis(health.header("Server-Timing"), "gw") != nil, "\(health.headers)")
            let notFound = try relay.get("/nowhere", key: nil)
            #expect(notFound.status == 404)
            #expect(serverTimingMillis(notFound.header("Server-Timing"), "gw") != nil)
            let wrongMethod = try HTTPClient.request(port: relay.port, method: "PUT", path: "/api/v1/health", headers: ["Content-Length": "0"])
            #expect(wrongMethod.status == 405)
            #expect(serverTimingMillis(wrongMethod.header("Server-Timing"), "gw") != nil)
            // Refused by the parser (no Content-Length on a PUT): no request was routed, still timed.
            let refused = try HTTPClient.request(port: relay.port, method: "PUT", path: "/api/v1/health")
            #expect(refused.status == 411)
            #expect(serverTimingMillis(refused.header("Server-Timing"), "gw") != nil)
            let metrics = try HTTPClient.request(port: relay.port, method: "GET", path: "/metrics")
            #expect(serverTimingMillis(metrics.header("Server-Timing"), "gw") != nil)

            // A stream whose provider takes 300 ms to answer: that wait is not the gateway's time.
            let stream = try relay.chat(["message": "[mock tokens=3 first=300]", "model": "gpt-4.1"])
            #expect(stream.first("done") != nil)
            let timing = stream.header("Server-Timing")
            let gw = try #require(serverTimingMillis(timing, "gw"), "\(timing ?? "no Server-Timing")")
            #expect(gw >= 0 && gw < 250, "\(timing ?? "")")
            #expect(serverTimingMillis(timing, "db") != nil, "\(timing ?? "")")
            #expect(serverTimingMillis(timing, "upstream") != nil, "\(timing ?? "")")
            // The header shows three decimals.
            #expect(timing?.range(of: #"gw;dur=\d+\.\d{3}"#, options: .regularExpression) != nil)
        }

        @Test func twoWorkersReportAsOneProcess() throws {
            let relay = try Relay(mock: nil, ["CHAT_WORKERS": "2"])
            let before = try Scrape.get(relay)
            #expect(before.value("chatrelay_workers") == 2)
            // New connections spread over both workers (SO_REUSEPORT); go on until each served some.
            var servedBy: [Int: Int] = [:]
            var requests = 0
            while requests < 400 && !(servedBy[0, default: 0] >= 3 && servedBy[1, default: 0] >= 3) {
                let r = try relay.get("/api/v1/health", key: nil)
                requests += 1
                if let w = r.json?["worker"] as? Int { servedBy[w, default: 0] += 1 }
            }
            #expect(servedBy.keys.sorted() == [0, 1], "served by \(servedBy)")
            let labels = ["route": "/api/v1/health", "method": "GET", "status": "200"]
            // Whichever worker answers the scrape, it reports both workers' requests.
            for _ in 0..<6 {
                let after = try Scrape.get(relay)
                #expect(after.value("chatrelay_http_requests_total", labels) - before.value("chatrelay_http_requests_total", labels)
                        == Double(requests))
                #expect(after.value("chatrelay_db_pool_connections") >= 2, "each worker's pool counts")
            }
        }
    }
}
