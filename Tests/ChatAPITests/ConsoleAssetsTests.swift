import Foundation
import Testing
@testable import ChatAPI

/// The console's files as built into the binary are exactly console/'s, and are all served.
@Suite struct ConsoleAssetsTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("console")

    /// Fails when a file in console/ changed, appeared or went without
    /// `scripts/embed-console.py` being run.
    @Test func generatedFileMatchesConsoleFolder() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path).filter { !$0.hasPrefix(".") }.sorted()
        let embedded = ConsoleAsset.sources.map(\.name)
        #expect(embedded == names, "run scripts/embed-console.py: console/ has \(names), the binary \(embedded)")
        for (name, text) in ConsoleAsset.sources {
            let onDisk = try Data(contentsOf: Self.folder.appendingPathComponent(name))
            #expect(Array(text.utf8) == Array(onDisk), "console/\(name) changed since ConsoleAssets.swift was generated: run scripts/embed-console.py")
        }
    }

    @Test func everyEmbeddedFileIsServed() {
        #expect(ConsoleAsset.byName.count == ConsoleAsset.sources.count)
        #expect(ConsoleAsset.byName[ConsoleRoutes.indexName] != nil)
    }

    @Test func contentTypes() {
        #expect(ConsoleAsset.contentType(forName: "index.html") == "text/html; charset=utf-8")
        #expect(ConsoleAsset.contentType(forName: "app.js") == "text/javascript; charset=utf-8")
        #expect(ConsoleAsset.contentType(forName: "style.css") == "text/css; charset=utf-8")
        #expect(ConsoleAsset.contentType(forName: "icon.svg") == "image/svg+xml")
        #expect(ConsoleAsset.contentType(forName: "notes.txt") == nil)
        #expect(ConsoleAsset.contentType(forName: "Makefile") == nil)
    }

    @Test func etagIsStrongAndFollowsTheContent() throws {
        let a = try #require(ConsoleAsset(name: "a.js", text: "one"))
        let b = try #require(ConsoleAsset(name: "b.js", text: "two"))
        let a2 = try #require(ConsoleAsset(name: "c.js", text: "one"))
        #expect(a.etag.hasPrefix("\"") && a.etag.hasSuffix("\"") && a.etag.count == 34)
        #expect(a.etag == a2.etag)
        #expect(a.etag != b.etag)
    }

    @Test func ifNoneMatch() {
        let tag = "\"0123abcd\""
        #expect(ConsoleRoutes.etagMatches(tag, tag))
        #expect(ConsoleRoutes.etagMatches("W/\(tag)", tag))
        #expect(ConsoleRoutes.etagMatches("\"other\", \(tag)", tag))
        #expect(ConsoleRoutes.etagMatches("*", tag))
        #expect(!ConsoleRoutes.etagMatches("\"other\"", tag))
        #expect(!ConsoleRoutes.etagMatches("0123abcd", tag))
        #expect(!ConsoleRoutes.etagMatches("", tag))
    }
}

extension ChatAPIEndToEnd {
    /// The static routes on a real server: no key needed, headers, 304, 404.
    @Suite(.serialized) struct ConsoleRoute {
        func get(_ relay: Relay, _ path: String, _ headers: [String: String] = [:], method: String = "GET") throws -> HTTPResult {
            try HTTPClient.request(port: relay.port, method: method, path: path, headers: headers)
        }

        @Test func indexAndAssets() throws {
            let relay = try Shared.relay.get()
            let expected = [
                ("/", "index.html", "text/html; charset=utf-8"),
                ("/console/app.js", "app.js", "text/javascript; charset=utf-8"),
                ("/console/style.css", "style.css", "text/css; charset=utf-8"),
                ("/console/icon.svg", "icon.svg", "image/svg+xml"),
            ]
            for (path, name, type) in expected {
                let r = try get(relay, path)
                #expect(r.status == 200, "\(path): \(r.status) \(r.text)")
                #expect(r.header("Content-Type") == type, "\(path)")
                #expect(r.body == ConsoleAsset.byName[name]?.body, "\(path)")
                #expect(r.header("X-Content-Type-Options") == "nosniff", "\(path)")
                #expect(r.header("Cache-Control") == "no-cache", "\(path)")
                let csp = r.header("Content-Security-Policy") ?? ""
                #expect(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"), "\(path): \(csp)")
                #expect(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "\(path): \(csp)")
                let etag = try #require(r.header("ETag"), "\(path)")
                #expect(etag == ConsoleAsset.byName[name]?.etag && etag.hasPrefix("\""), "\(path): \(etag)")
            }
        }

        @Test func conditionalGetIsNotModified() throws {
            let relay = try Shared.relay.get()
            let first = try get(relay, "/console/app.js")
            let etag = try #require(first.header("ETag"))
            let again = try get(relay, "/console/app.js", ["If-None-Match": etag])
            #expect(again.status == 304)
            #expect(again.body.isEmpty)
            #expect(again.header("ETag") == etag)
            #expect(again.header("Content-Length") == nil, "a 304's Content-Length may only be the 200's")
            #expect(try get(relay, "/console/app.js", ["If-None-Match": "W/\(etag)"]).status == 304)
            let changed = try get(relay, "/console/app.js", ["If-None-Match": "\"stale\""])
            #expect(changed.status == 200 && changed.body == first.body)
            // Another file's tag is not this one's.
            let index = try get(relay, "/", ["If-None-Match": etag])
            #expect(index.status == 200)
        }

        @Test func unknownAssetsAndHead() throws {
            let relay = try Shared.relay.get()
            for path in ["/console/nope.js", "/console/..%2fPackage.swift", "/console/", "/console/index.html/x"] {
                let r = try get(relay, path)
                #expect(r.status == 404, "\(path): \(r.status)")
                #expect(r.errorType == "not_found", "\(path): \(r.text)")
            }
            // HEAD: the GET's head, no body (read raw: the harness's client expects a body after a length).
            let s = try TestSocket(port: relay.port)
            defer { s.close() }
            try s.send(requestBytes(method: "HEAD", path: "/", headers: ["Connection": "close"], body: []))
            var raw: [UInt8] = []
            while let bytes = try s.receive(seconds: 5), !bytes.isEmpty { raw += bytes }
            let text = String(decoding: raw, as: UTF8.self)
            let etag = try #require(ConsoleAsset.byName["index.html"]?.etag)
            #expect(text.hasPrefix("HTTP/1.1 200"), "\(text)")
            #expect(text.contains("ETag: \(etag)\r\n"), "\(text)")
            #expect(text.hasSuffix("\r\n\r\n"), "HEAD sent a body: \(text)")
            #expect(try get(relay, "/", method: "POST").status == 405)
        }
    }
}
