import ChatAPI
import Foundation
import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The relays the admin API tests share: one with CHAT_ADMIN_KEYS, one without.
enum AdminRelays {
    static let adminKey = "admin-test-key-0123456789abcdef"
    static let on: Result<Relay, Error> = Result { try Relay(mock: nil, ["CHAT_ADMIN_KEYS": adminKey]) }
    static let off: Result<Relay, Error> = Result { try Relay(mock: nil) }
}

extension Relay {
    func admin(_ method: String, _ path: String, body: [String: Any]? = nil, rawBody: String? = nil,
               key: String? = AdminRelays.adminKey) throws -> HTTPResult {
        var headers: [String: String] = [:]
        if let key { headers["Authorization"] = "Bearer \(key)" }
        var bytes: [UInt8] = []
        if let body { bytes = jsonBytes(body) }
        if let rawBody { bytes = Array(rawBody.utf8) }
        if !bytes.isEmpty { headers["Content-Type"] = "application/json" }
        return try HTTPClient.request(port: port, method: method, path: path, headers: headers, body: bytes)
    }
}

/// One value from the test database (blocking; tests only).
func dbValue(_ sql: String) throws -> String? {
    let db = try ChatTestDatabase.get()
    switch PGBlocking.execute(conninfo: db.conninfo, sql) {
    case .failure(let e): throw HarnessError.io("\(sql): \(e)")
    case .success(let r): return r.rows.first?.first ?? nil
    }
}

func apiKeyRows() throws -> Int { Int(try dbValue("SELECT count(*) FROM api_keys") ?? "") ?? -1 }

extension ChatAPIEndToEnd {
    @Suite(.serialized) struct AdminKeys {
        @Test func createListGetRotateRevoke() throws {
            let relay = try AdminRelays.on.get()
            let created = try relay.admin("POST", "/admin/v1/keys", body: [
                "name": "admin-crud", "rpm": 60, "tpm": 100_000, "max_streams": 4, "budget_usd": "12.50",
                "budget_period": "day", "models": ["mock-echo", "gpt-5.4-mini", "mock-echo"],
            ])
            #expect(created.status == 201, "\(created.status) \(created.text)")
            #expect(created.header("Cache-Control") == "no-store")
            let body = try #require(created.json)
            let secret = try #require(body.str("secret"))
            let key = try #require(body.obj("key"))
            let id = try #require(key.str("id"))
            #expect(secret.hasPrefix("cr_") && secret.count == 51)
            #expect(key.str("prefix") == String(secret.prefix(10)))
            #expect(key.str("name") == "admin-crud")
            #expect(key.int("rpm") == 60 && key.int("tpm") == 100_000 && key.int("max_streams") == 4)
            #expect(key.str("budget_usd") == "12.50" && key.str("budget_period") == "day")
            #expect(key["models"] as? [String] == ["mock-echo", "gpt-5.4-mini"])
            #expect(key.str("created_at") != nil && key["rotated_at"] is NSNull && key["revoked_at"] is NSNull)
            // Only the hash is stored, and it is never shown.
            #expect(try dbValue("SELECT key_hash FROM api_keys WHERE id = '\(id)'") == APIKeys.hex(APIKeys.sha256(secret)))
            #expect(!created.text.contains(APIKeys.hex(APIKeys.sha256(secret))))
            #expect(key["key_hash"] == nil && key["hash"] == nil)

            let list = try relay.admin("GET", "/admin/v1/keys")
            #expect(list.status == 200)
            let listed = try #require((list.json?["data"] as? [[String: Any]])?.first { $0.str("id") == id })
            #expect(listed.str("prefix") == key.str("prefix") && listed.str("budget_usd") == "12.50")
            #expect(!list.text.contains(secret))

            let one = try relay.admin("GET", "/admin/v1/keys/\(id)")
            #expect(one.status == 200 && one.json?.str("name") == "admin-crud")

            let rotated = try relay.admin("POST", "/admin/v1/keys/\(id)/rotate")
            #expect(rotated.status == 200, "\(rotated.status) \(rotated.text)")
            let newSecret = try #require(rotated.json?.str("secret"))
            let rotatedKey = try #require(rotated.json?.obj("key"))
            #expect(newSecret != secret && newSecret.hasPrefix("cr_"))
            #expect(rotatedKey.str("id") == id && rotatedKey.str("prefix") == String(newSecret.prefix(10)))
            #expect(rotatedKey.str("rotated_at") != nil && rotatedKey["revoked_at"] is NSNull)
            #expect(try dbValue("SELECT key_hash FROM api_keys WHERE id = '\(id)'") == APIKeys.hex(APIKeys.sha256(newSecret)))

            let revoked = try relay.admin("POST", "/admin/v1/keys/\(id)/revoke")
            #expect(revoked.status == 200, "\(revoked.status) \(revoked.text)")
            let revokedAt = try #require(revoked.json?.str("revoked_at"))
            // Again, by DELETE: the first revocation time stays.
            let again = try relay.admin("DELETE", "/admin/v1/keys/\(id)")
            #expect(again.status == 200 && again.json?.str("revoked_at") == revokedAt)
            let rotateRevoked = try relay.admin("POST", "/admin/v1/keys/\(id)/rotate")
            #expect(rotateRevoked.status == 409 && rotateRevoked.errorType == "conflict", "\(rotateRevoked.status) \(rotateRevoked.text)")
            #expect(try dbValue("SELECT key_hash FROM api_keys WHERE id = '\(id)'") == APIKeys.hex(APIKeys.sha256(newSecret)))
        }

        @Test func unknownIDsAre404() throws {
            let relay = try AdminRelays.on.get()
            let unknown = "00000000-0000-4000-8000-000000000000"
            for (method, path) in [("GET", "/admin/v1/keys/\(unknown)"), ("DELETE", "/admin/v1/keys/\(unknown)"),
                                   ("POST", "/admin/v1/keys/\(unknown)/revoke"), ("POST", "/admin/v1/keys/\(unknown)/rotate"),
                                   ("GET", "/admin/v1/keys/not-a-uuid"), ("POST", "/admin/v1/keys/not-a-uuid/rotate")] {
                let r = try relay.admin(method, path)
                #expect(r.status == 404 && r.errorType == "not_found", "\(method) \(path): \(r.status) \(r.text)")
            }
        }

        @Test func budgetKeepsTheDecimalAsWritten() throws {
            let relay = try AdminRelays.on.get()
            for (raw, kept) in [("12.50", "12.50"), ("0.000000000001", "0.000000000001"), ("1000000", "1000000"), ("0.1", "0.1")] {
                let r = try relay.admin("POST", "/admin/v1/keys", rawBody: #"{"name":"budget \#(raw)","budget_usd":\#(raw),"budget_period":"month"}"#)
                #expect(r.status == 201, "\(raw): \(r.status) \(r.text)")
                #expect(r.json?.obj("key")?.str("budget_usd") == kept, "\(raw): \(r.text)")
                let s = try relay.admin("POST", "/admin/v1/keys", body: ["name": "budget s\(raw)", "budget_usd": raw, "budget_period": "day"])
                #expect(s.json?.obj("key")?.str("budget_usd") == kept, "\"\(raw)\": \(s.text)")
            }
        }

        @Test func badBodiesAre400AndWriteNothing() throws {
            let relay = try AdminRelays.on.get()
            let cases: [(body: String, param: String?, message: String)] = [
                (#"{"name":"x","rpm":-5}"#, "rpm", "rpm must be an integer from 1 to 10000000"),
                (#"{"name":"x","rpm":0}"#, "rpm", "rpm"),
                (#"{"name":"x","rpm":2.5}"#, "rpm", "rpm"),
                (#"{"name":"x","rpm":"60"}"#, "rpm", "rpm"),
                (#"{"name":"x","rpm":10000001}"#, "rpm", "rpm"),
                (#"{"name":"x","tpm":10000000001}"#, "tpm", "tpm"),
                (#"{"name":"x","tpm":1e30}"#, "tpm", "tpm"),
                (#"{"name":"x","max_streams":-1}"#, "max_streams", "max_streams"),
                (#"{"name":"x","max_streams":1000001}"#, "max_streams", "max_streams"),
                (#"{"name":"x","budget_usd":5}"#, "budget_period", "budget_period (day or month) is required"),
                (#"{"name":"x","budget_period":"day"}"#, "budget_period", "needs budget_usd"),
                (#"{"name":"x","budget_usd":0,"budget_period":"day"}"#, "budget_usd", "greater than 0"),
                (#"{"name":"x","budget_usd":-3,"budget_period":"day"}"#, "budget_usd", "greater than 0"),
                (#"{"name":"x","budget_usd":"1e3","budget_period":"day"}"#, "budget_usd", "plain decimal"),
                (#"{"name":"x","budget_usd":1e3,"budget_period":"day"}"#, "budget_usd", "plain decimal"),
                (#"{"name":"x","budget_usd":"0.0000000000001","budget_period":"day"}"#, "budget_usd", "12 decimal places"),
                (#"{"name":"x","budget_usd":"1000000.5","budget_period":"day"}"#, "budget_usd", "at most 1000000"),
                (#"{"name":"x","budget_usd":"5","budget_period":"week"}"#, "budget_period", "day or month"),
                (#"{"name":"x","budget_usd":true,"budget_period":"day"}"#, "budget_usd", "budget_usd"),
                (#"{"name":"x","models":["mock-echo","no-such-model"]}"#, "models[1]", "unknown model 'no-such-model' in models"),
                (#"{"name":"x","models":[]}"#, "models", "at least one model"),
                (#"{"name":"x","models":"mock-echo"}"#, "models", "array"),
                (#"{"name":"x","models":[7]}"#, "models[0]", "string"),
                (#"{"name":"x","colour":"red"}"#, "colour", "unknown field 'colour'"),
                (#"{"rpm":5}"#, "name", "name is required"),
                (#"{"name":""}"#, "name", "name is required"),
                (#"{"name":"\#(String(repeating: "n", count: 101))"}"#, "name", "1 to 100 characters"),
                (#"{"name":"line\nbreak"}"#, "name", "control characters"),
                (#"{"name":5}"#, "name", "name must be a string"),
                (#"{"name":"x""#, nil, "not valid JSON"),
                (#"["name"]"#, nil, "JSON object"),
            ]
            let before = try apiKeyRows()
            for c in cases {
                let r = try relay.admin("POST", "/admin/v1/keys", rawBody: c.body)
                #expect(r.status == 400 && r.errorType == "invalid_request", "\(c.body): \(r.status) \(r.text)")
                #expect(r.errorParam == c.param, "\(c.body): \(r.text)")
                #expect(r.errorMessage?.contains(c.message) == true, "\(c.body): \(r.text)")
            }
            #expect(try apiKeyRows() == before, "a refused body wrote a key")
        }

        @Test func theAdminAPIIsOffWithoutAdminKeys() throws {
            let relay = try AdminRelays.off.get()
            let before = try apiKeyRows()
            for (method, path) in [("GET", "/admin/v1/keys"), ("POST", "/admin/v1/keys"), ("GET", "/admin/v1/keys/00000000-0000-4000-8000-000000000000"),
                                   ("POST", "/admin/v1/keys/00000000-0000-4000-8000-000000000000/rotate")] {
                for key in [nil, "k1", AdminRelays.adminKey] {
                    let r = try relay.admin(method, path, body: method == "POST" ? ["name": "off"] : nil, key: key)
                    #expect(r.status == 404 && r.errorType == "not_found", "\(method) \(path): \(r.status) \(r.text)")
                    #expect(r.errorMessage == "the admin API is off: set CHAT_ADMIN_KEYS")
                }
            }
            #expect(try apiKeyRows() == before)
        }

        @Test func onlyAnAdminKeyOpensIt() throws {
            let relay = try AdminRelays.on.get()
            let before = try apiKeyRows()
            for key in [nil, "k1", "wrong-admin-key-0123456789", AdminRelays.adminKey + "x"] {
                for (method, path) in [("GET", "/admin/v1/keys"), ("POST", "/admin/v1/keys")] {
                    let r = try relay.admin(method, path, body: method == "POST" ? ["name": "intruder"] : nil, key: key)
                    #expect(r.status == 401 && r.errorType == "unauthorized", "\(key ?? "no key"): \(r.status) \(r.text)")
                    #expect(r.header("WWW-Authenticate") == "Bearer")
                }
            }
            #expect(try apiKeyRows() == before)
            // And an admin key is not a client key.
            #expect(try relay.get("/api/v1/models", key: AdminRelays.adminKey).status == 401)
        }

        @Test func theCLIAndTheAPIShareTheKeys() throws {
            let relay = try AdminRelays.on.get()
            let db = try ChatTestDatabase.get()
            let name = "cli-\(UInt32.random(in: 0...UInt32.max))"
            let out = try runKeysCLI(["create", "--name", name, "--rpm", "7", "--models", "mock-echo"], databaseURL: db.conninfo)
            #expect(out.status == 0, "\(out.stderr)")
            let secret = try #require(out.stdout.split(separator: "\n").last.map(String.init))
            #expect(secret.hasPrefix("cr_") && secret.count == 51, "\(out.stdout)")
            let list = try relay.admin("GET", "/admin/v1/keys")
            let listed = try #require((list.json?["data"] as? [[String: Any]])?.first { $0.str("name") == name })
            #expect(listed.int("rpm") == 7 && listed.str("prefix") == String(secret.prefix(10)))
        }

        /// The database away: 503, and the admin API comes back with it.
        @Test(.enabled(if: ChatTestDatabase.isEmbedded, "needs the embedded cluster to stop and start it"))
        func databaseUnavailableIs503() throws {
            let relay = try AdminRelays.on.get()
            let pg = try #require(try ChatTestDatabase.get().embedded)
            try pg.stop(mode: .immediate)
            var restarted = false
            defer { if !restarted { _ = try? pg.start() } }
            #expect(waitUntil(seconds: 15) { (try? relay.get("/api/v1/health", key: nil))?.status == 503 })
            let list = try relay.admin("GET", "/admin/v1/keys")
            #expect(list.status == 503 && list.errorType == "overloaded", "\(list.status) \(list.text)")
            let create = try relay.admin("POST", "/admin/v1/keys", body: ["name": "while-down"])
            #expect(create.status == 503, "\(create.status) \(create.text)")
            _ = try pg.start()
            restarted = true
            #expect(waitUntil(seconds: 20) { (try? relay.admin("GET", "/admin/v1/keys"))?.status == 200 }, "the admin API did not recover")
            #expect(try dbValue("SELECT count(*) FROM api_keys WHERE name = 'while-down'") == "0")
        }
    }
}

/// `chatrelay keys ...` against the test database: exit status, stdout and stderr.
func runKeysCLI(_ args: [String], databaseURL: String) throws -> (status: Int32, stdout: String, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: Binaries.chatrelay)
    p.arguments = ["keys"] + args
    p.environment = ["DATABASE_URL": databaseURL, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                     "CHAT_DATA_DIR": NSTemporaryDirectory() + "chatrelay-keys-cli-\(getpid())"]
    p.currentDirectoryURL = URL(fileURLWithPath: NSTemporaryDirectory())
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}
