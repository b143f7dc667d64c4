// DecodeBench: cost of turning one upstream SSE chunk into one client SSE frame, per provider.
//
// Run (release build, with the allocation counter preloaded):
//   swift build -c release --scratch-path .build-prov --product DecodeBench
//   cc -O2 -shared -fPIC -o /tmp/malloc_count.so bench/tools/malloc_count.c
//   LD_PRELOAD=/tmp/malloc_count.so .build-prov/release/DecodeBench
// Without the preload (`swift run -c release --scratch-path .build-prov DecodeBench`) timings are
// reported and allocations show as "n/a".
//
// Per iteration: feed one complete chunk to the provider's stream decoder, and for each text
// event append `id: N\nevent: token\ndata: {"text":"…"}\n\n` to a reused output buffer.
import Glibc
import JSONCore
import Providers

let openAIChunk = #"data: {"id":"chatcmpl-ETVG6sumyv8LwjGBdEioS2OHQJSkv","object":"chat.completion.chunk","created":1790700378,"model":"gpt-5.4-mini-2026-03-17","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":" How"},"finish_reason":null}],"usage":null,"obfuscation":"LcdzdJdMMgDHt6"}"# + "\n\n"
let anthropicChunk = "event: content_block_delta\n" + #"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"# + "\n\n"
let geminiChunk = #"data: {"candidates": [{"content": {"parts": [{"text": "Hello! I'm doing"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 9,"candidatesTokenCount": 8,"totalTokenCount": 129,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 9}],"thoughtsTokenCount": 112},"modelVersion": "gemini-2.5-flash","responseId": "ag4pavQTzLrj4Q-XkKnZBA"}"# + "\r\n\r\n"

typealias CounterFn = @convention(c) () -> UInt64
let mallocCount: CounterFn? = {
    // A nil handle is glibc's RTLD_DEFAULT: search every loaded object, including the preload.
    guard let sym = dlsym(nil, "malloc_count_get") else { return nil }
    return unsafeBitCast(sym, to: CounterFn.self)
}()

func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

@inline(never)
func appendFrame(_ id: Int, _ text: String, to out: inout [UInt8]) {
    out.append(contentsOf: "id: ".utf8)
    JSON.appendInt(Int64(id), to: &out)
    out.append(contentsOf: "\nevent: token\ndata: {\"text\":\"".utf8)
    JSON.appendEscaped(text, to: &out)
    out.append(contentsOf: "\"}\n\n".utf8)
}

/// Returns (ns per chunk, allocations per chunk or nil, frames written).
func run<D: ProviderStreamDecoder>(_ decoder: inout D, chunk: [UInt8], iterations: Int, out: inout [UInt8], id: inout Int) -> (Double, Double?, Int) {
    var frames = 0
    let allocsBefore = mallocCount?()
    let start = nowNanos()
    chunk.withUnsafeBytes { raw in
        for _ in 0..<iterations {
            decoder.feed(raw) { event in
                if case .text(let t) = event {
                    id += 1
                    appendFrame(id, t, to: &out)
                    frames += 1
                }
            }
            // The real server hands the buffer to the socket; here we just recycle it.
            if out.count > 60_000 { out.removeAll(keepingCapacity: true) }
        }
    }
    let elapsed = nowNanos() - start
    let allocs = allocsBefore.flatMap { before in mallocCount.map { Double($0() - before) / Double(iterations) } }
    return (Double(elapsed) / Double(iterations), allocs, frames)
}

func bench<D: ProviderStreamDecoder>(_ name: String, _ make: () -> D, chunk: String, iterations: Int, runs: Int) {
    let bytes = Array(chunk.utf8)
    var decoder = make()
    var out: [UInt8] = []
    out.reserveCapacity(65_536)
    var id = 0
    _ = run(&decoder, chunk: bytes, iterations: 10_000, out: &out, id: &id) // warm-up: buffers reach steady size
    var times: [Double] = []
    var allocs: [Double] = []
    var frames = 0
    for _ in 0..<runs {
        let (ns, a, f) = run(&decoder, chunk: bytes, iterations: iterations, out: &out, id: &id)
        times.append(ns)
        if let a { allocs.append(a) }
        frames += f
    }
    times.sort()
    let median = times[times.count / 2]
    let allocText = allocs.isEmpty ? "n/a" : String(allocs.sorted()[allocs.count / 2])
    let ok = frames == iterations * runs ? "" : "  (WARNING: \(frames) frames for \(iterations * runs) chunks)"
    print("\(name)\tchunk \(bytes.count) B\tmedian \(Int(median)) ns/chunk\tmin \(Int(times[0])) ns\tallocs/chunk \(allocText)\(ok)")
}

let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1_000_000 : 1_000_000
let runs = 5
print("DecodeBench: \(iterations) chunks x \(runs) runs per provider, decode + re-frame into a reused buffer")
bench("openai", { OpenAIStreamDecoder() }, chunk: openAIChunk, iterations: iterations, runs: runs)
bench("anthropic", { AnthropicStreamDecoder() }, chunk: anthropicChunk, iterations: iterations, runs: runs)
bench("gemini", { GeminiStreamDecoder() }, chunk: geminiChunk, iterations: iterations, runs: runs)
