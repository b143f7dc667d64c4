/// Command-line options of `chatrelay-bench`. Parsing failures are values (`OptionsError`).
struct Options {
    enum Target: String { case chat, openai, anthropic }
    enum Mode: String { case closed, open, hold, vanish }

    var target = Target.openai
    var mode = Mode.closed
    var host = "127.0.0.1"
    var port = 0
    var pathPrefix = ""
    var apiKey = "bench-key"
    var model = "gpt-4o-mini"
    var prompt = "Say hello"

    var concurrency = 10
    /// Closed loop: the C slots open evenly over this many seconds instead of all at once, so the
    /// streams do not start (and, with equal answers, keep ticking) in lockstep.
    var rampSeconds = 0.0
    var rate = 0.0
    var maxStreams = 10_000
    var requests = 1_000
    var durationSeconds = 10.0
    /// After the run's end (requests or duration), in-flight requests get this long before the hard stop.
    var graceSeconds = 10.0
    var requestTimeoutSeconds = 60.0
    var maxPendingConnects = 256

    // Mock directives carried in the message.
    var tokens = 20
    var tokenDelayMs = 0.0
    var firstDelayMs = 0.0
    var stamp = true
    var extraDirectives = ""
    /// `--target chat` only: several models answering each turn (`models`), and the response
    /// cache asked for with this lifetime (`cache.ttl_s`).
    var models: [String] = []
    var cacheTTL: Int?

    // Hold / vanish.
    var streams = 1_000
    var steps: [Int] = []
    var holdSeconds = 3.0
    var openTimeoutSeconds = 120.0
    var mockHost: String?
    var mockPort = 0
    var settleTimeoutSeconds = 60.0
    var fdSlack = 0
    var vanishReset = false

    var serverPIDs: [Int32] = []
    var jsonPath: String?
    var label = ""
    var quiet = false

    /// The mock directive block appended to the message.
    var directives: String {
        var d = "[mock tokens=\(tokens) delay=\(Fmt.trim(tokenDelayMs)) first=\(Fmt.trim(firstDelayMs))"
        if stamp { d += " stamp" }
        if !extraDirectives.isEmpty { d += " " + extraDirectives }
        return d + "]"
    }

    static let usage = """
    usage: chatrelay-bench --url http://127.0.0.1:PORT [--target chat|openai|anthropic] [mode] [options]
    modes:
      --concurrency C          closed loop: C requests in flight, keep-alive connections reused (default)
        --ramp S               open the C slots evenly over S seconds instead of all at once
      --rate R                 open loop: R requests/s, at most --max-streams in flight (default 10000)
      --hold N                 open N long streams (1 token/s), sample server RSS/fds per stream, close
      --vanish N               open N long streams, close all client sockets at once, poll until the
                               server (and the mock's /health active_streams) return to baseline
    bounds (whichever comes first, then --grace S for in-flight requests, then a hard stop):
      --requests N (1000)  --duration S (10)  --grace S (10)  --timeout S per request (60)
    request:
      --target chat|openai|anthropic (openai)  --key KEY (bench-key)  --model M (gpt-4o-mini)  --prompt TEXT
      --tokens N (20)  --token-delay-ms MS (0)  --first-delay-ms MS (0)  --no-stamp  --directives "k=v …"
      --models a,b,c (chat: several models each turn)  --cache-ttl S (ask for the response cache: the body on chat, Cache-Control otherwise)
    hold / vanish:
      --steps a,b,c (hold: sample at each count)  --hold-seconds S (3)  --open-timeout S (120)
      --mock-url http://127.0.0.1:P (poll its /health)  --settle-timeout S (60)  --fd-slack N (0)  --reset
    measuring:
      --server-pid P (repeatable)  --json FILE  --label TEXT  --max-connects N in progress (256)  --quiet
    """

    static func parse(_ args: [String]) -> Result<Options, OptionsError> {
        var o = Options()
        var sawURL = false
        var tokensSet = false
        var delaySet = false
        var i = 0
        func next() -> String? {
            i += 1
            return i < args.count ? args[i] : nil
        }
        func num(_ name: String) -> Result<Double, OptionsError> {
            guard let v = next(), let d = Double(v), d >= 0, d.isFinite else { return .failure(OptionsError("\(name) needs a non-negative number")) }
            return .success(d)
        }
        func int(_ name: String) -> Result<Int, OptionsError> {
            guard let v = next(), let d = Int(v), d >= 0 else { return .failure(OptionsError("\(name) needs a non-negative integer")) }
            return .success(d)
        }
        while i < args.count {
            let a = args[i]
            do throws(OptionsError) {
                switch a {
                case "--url":
                    guard let v = next() else { throw OptionsError("--url needs a value") }
                    let u = try parseURL(v)
                    (o.host, o.port, o.pathPrefix) = u
                    sawURL = true
                case "--mock-url":
                    guard let v = next() else { throw OptionsError("--mock-url needs a value") }
                    let u = try parseURL(v)
                    o.mockHost = u.host
                    o.mockPort = u.port
                case "--target":
                    guard let v = next(), let t = Target(rawValue: v) else { throw OptionsError("--target is chat, openai or anthropic") }
                    o.target = t
                case "--concurrency": o.mode = .closed; o.concurrency = max(1, try int(a).get())
                case "--ramp": o.rampSeconds = try num(a).get()
                case "--rate": o.mode = .open; o.rate = try num(a).get()
                case "--max-streams": o.maxStreams = max(1, try int(a).get())
                case "--hold": o.mode = .hold; o.streams = max(1, try int(a).get())
                case "--vanish": o.mode = .vanish; o.streams = max(1, try int(a).get())
                case "--requests": o.requests = try int(a).get()
                case "--duration": o.durationSeconds = try num(a).get()
                case "--grace": o.graceSeconds = try num(a).get()
                case "--timeout": o.requestTimeoutSeconds = max(0.001, try num(a).get())
                case "--max-connects": o.maxPendingConnects = max(1, try int(a).get())
                case "--key": o.apiKey = next() ?? o.apiKey
                case "--model": o.model = next() ?? o.model
                case "--prompt": o.prompt = next() ?? o.prompt
                case "--tokens": o.tokens = try int(a).get(); tokensSet = true
                case "--token-delay-ms": o.tokenDelayMs = try num(a).get(); delaySet = true
                case "--first-delay-ms": o.firstDelayMs = try num(a).get()
                case "--no-stamp": o.stamp = false
                case "--directives": o.extraDirectives = next() ?? ""
                case "--models": o.models = (next() ?? "").split(separator: ",").map(String.init)
                case "--cache-ttl": o.cacheTTL = try int(a).get()
                case "--steps":
                    guard let v = next() else { throw OptionsError("--steps needs a,b,c") }
                    var steps: [Int] = []
                    for p in v.split(separator: ",") {
                        guard let n = Int(p), n > 0 else { throw OptionsError("--steps: bad count \(p)") }
                        steps.append(n)
                    }
                    o.steps = steps.sorted()
                case "--hold-seconds": o.holdSeconds = try num(a).get()
                case "--open-timeout": o.openTimeoutSeconds = try num(a).get()
                case "--settle-timeout": o.settleTimeoutSeconds = try num(a).get()
                case "--fd-slack": o.fdSlack = try int(a).get()
                case "--reset": o.vanishReset = true
                case "--server-pid":
                    guard let v = next(), let p = Int32(v), p > 0 else { throw OptionsError("--server-pid needs a pid") }
                    o.serverPIDs.append(p)
                case "--json": o.jsonPath = next()
                case "--label": o.label = next() ?? ""
                case "--quiet": o.quiet = true
                case "-h", "--help": throw OptionsError(usage)
                default: throw OptionsError("unknown argument \(a)\n\(usage)")
                }
            } catch {
                return .failure(error)
            }
            i += 1
        }
        guard sawURL else { return .failure(OptionsError("--url is required\n\(usage)")) }
        if o.mode == .open && o.rate <= 0 { return .failure(OptionsError("--rate must be > 0")) }
        if o.mode == .hold || o.mode == .vanish {
            // Long streams, one token a second, unless told otherwise.
            if !tokensSet { o.tokens = 100_000 }
            if !delaySet { o.tokenDelayMs = 1000 }
        }
        if o.mode == .hold {
            if o.steps.isEmpty || o.steps.last! != o.streams { o.steps = o.steps.filter { $0 < o.streams } + [o.streams] }
        } else if o.mode == .vanish {
            o.steps = [o.streams]
        }
        return .success(o)
    }

    /// `http://HOST:PORT[/prefix]`, loopback only: the harness must never load anything else.
    static func parseURL(_ s: String) throws(OptionsError) -> (host: String, port: Int, prefix: String) {
        guard s.hasPrefix("http://") else { throw OptionsError("only http:// URLs: \(s)") }
        let rest = s.dropFirst(7)
        let hostPort = rest.prefix { $0 != "/" }
        var prefix = String(rest.dropFirst(hostPort.count))
        while prefix.hasSuffix("/") { prefix.removeLast() }
        let parts = hostPort.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = Int(parts[1]), port > 0, port < 65536 else {
            throw OptionsError("URL needs host:port: \(s)")
        }
        var host = String(parts[0])
        if host == "localhost" { host = "127.0.0.1" }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets[0] == "127", octets.allSatisfy({ Int($0).map { $0 >= 0 && $0 <= 255 } ?? false }) else {
            throw OptionsError("refusing non-loopback host \(host): the harness only targets 127.0.0.0/8")
        }
        return (host, port, prefix)
    }
}

struct OptionsError: Error {
    var message: String
    init(_ m: String) { message = m }
}

/// Number formatting without Foundation.
enum Fmt {
    static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let neg = x < 0
        let v = (abs(x) * scale).rounded()
        let whole = Int(v / scale)
        let frac = Int(v - Double(whole) * scale)
        var s = (neg ? "-" : "") + String(whole)
        if digits > 0 {
            var f = String(frac)
            while f.count < digits { f = "0" + f }
            s += "." + f
        }
        return s
    }

    /// 20 → "20", 2.5 → "2.5".
    static func trim(_ x: Double) -> String {
        if x == x.rounded() && abs(x) < 1e15 { return String(Int(x)) }
        var s = fixed(x, 3)
        while s.hasSuffix("0") { s.removeLast() }
        return s
    }

    static func pad(_ s: String, _ w: Int) -> String {
        s.count >= w ? s : String(repeating: " ", count: w - s.count) + s
    }
}
