import JSONCore
import Reactor

/// One worker's log: one JSON object (or one human line) per event on stdout. Lines of one tick
/// are written together just before the loop sleeps, so logging costs one write per tick, not
/// one per request. Never given a key or a message text.
public final class Logger {
    private let format: Config.LogFormat
    private let level: Config.LogLevel
    private let worker: Int
    private var pending: [UInt8] = []
    private var flushScheduled = false
    private weak var loop: EventLoop?

    /// Where lines go: stdout, or another descriptor (tests pass a pipe), written without
    /// blocking; lines a slow reader has not taken yet wait in `backlog` (bounded).
    private let output: NonBlockingOutput
    private var backlog: LogBuffer
    private var retryTimer: TimerID?

    /// Bytes of log lines a worker keeps for a reader that has fallen behind; past it lines are
    /// dropped and counted (`chatrelay_log_lines_dropped_total`).
    public static let defaultBacklogBytes = 1 << 20

    public init(format: Config.LogFormat, level: Config.LogLevel, worker: Int, loop: EventLoop?, fd: Int32 = 1,
                backlogBytes: Int = Logger.defaultBacklogBytes) {
        self.output = NonBlockingOutput(fd: fd)
        self.backlog = LogBuffer(capacity: backlogBytes)
        self.format = format
        self.level = level
        self.worker = worker
        self.loop = loop
    }

    /// A log field value.
    public enum Value {
        case string(String)
        case int(Int)
        case double(Double)
        case bool(Bool)
    }

    public func log(_ lvl: Config.LogLevel, _ message: String, _ fields: [(String, Value)] = []) {
        guard lvl >= level else { return }
        switch format {
        case .json:
            // Built straight into the pending batch with byte appends: no per-line array, no
            // intermediate Strings (the access log runs once per request).
            Self.append("{\"time\":\"", to: &pending)
            appendTimestamp(wallClockMillis(), to: &pending)
            Self.append("\",\"level\":\"", to: &pending)
            Self.append(lvl.name, to: &pending)
            Self.append("\",\"worker\":", to: &pending)
            Self.appendInt(worker, to: &pending)
            Self.append(",\"msg\":\"", to: &pending)
            JSON.appendEscaped(message, to: &pending)
            pending.append(0x22)
            Self.appendFields(fields, to: &pending)
            Self.append("}\n", to: &pending)
        case .text:
            var line: [UInt8] = []
            line.append(contentsOf: "\(Timestamp.iso8601(millis: wallClockMillis())) \(lvl.rawValue.uppercased()) [w\(worker)] \(message)".utf8)
            for (k, v) in fields {
                switch v {
                case .string(let s): line.append(contentsOf: " \(k)=\(s)".utf8)
                case .int(let i): line.append(contentsOf: " \(k)=\(i)".utf8)
                case .double(let d): line.append(contentsOf: " \(k)=\(d)".utf8)
                case .bool(let b): line.append(contentsOf: " \(k)=\(b)".utf8)
                }
            }
            line.append(0x0A)
            pending.append(contentsOf: line)
        }
        scheduleFlush()
    }

    /// `,"key":value` for each field.
    static func appendFields(_ fields: [(String, Value)], to out: inout [UInt8]) {
        for (k, v) in fields {
            append(",\"", to: &out)
            JSON.appendEscaped(k, to: &out)
            append("\":", to: &out)
            switch v {
            case .string(let s): out.append(0x22); JSON.appendEscaped(s, to: &out); out.append(0x22)
            case .int(let i): appendInt(i, to: &out)
            case .double(let d): out.append(contentsOf: (d.isFinite ? String(d) : "null").utf8)
            case .bool(let b): append(b ? "true" : "false", to: &out)
            }
        }
    }

    private func scheduleFlush() {
        if let loop, !loop.isStopped {
            if !flushScheduled {
                flushScheduled = true
                loop.beforeNextSleep { [weak self] in self?.flush() }
            }
        } else {
            flush()
        }
    }

    /// The access-log line of one request, at info. Same line as
    /// `info("request", [("method", …), ("path", …), ("status", …), ("bytes", …), ("duration_ms", …)])`
    /// but written without building the field array and its strings: it runs once per request
    /// and was a fifth of a health request's instructions.
    public func request(requestID: String, method: String, path: String, status: Int, bytes: Int, durationMicros: UInt64,
                        extra: [(String, Value)] = []) {
        guard Config.LogLevel.info >= level else { return }
        guard format == .json else {
            info("request", [("request_id", .string(requestID)), ("method", .string(method)), ("path", .string(path)),
                             ("status", .int(status)), ("bytes", .int(bytes)), ("duration_ms", .double(Double(durationMicros) / 1000))] + extra)
            return
        }
        var out: [UInt8] = []
        swap(&out, &pending)  // build in a local: one exclusive access instead of one per append
        Self.append("{\"time\":\"", to: &out)
        appendTimestamp(wallClockMillis(), to: &out)
        Self.append("\",\"level\":\"info\",\"worker\":", to: &out)
        Self.appendInt(worker, to: &out)
        Self.append(",\"msg\":\"request\",\"request_id\":\"", to: &out)
        JSON.appendEscaped(requestID, to: &out)
        Self.append("\",\"method\":\"", to: &out)
        JSON.appendEscaped(method, to: &out)
        Self.append("\",\"path\":\"", to: &out)
        JSON.appendEscaped(path, to: &out)
        Self.append("\",\"status\":", to: &out)
        Self.appendInt(status, to: &out)
        Self.append(",\"bytes\":", to: &out)
        Self.appendInt(bytes, to: &out)
        Self.append(",\"duration_ms\":", to: &out)
        Self.appendMillis(micros: durationMicros, to: &out)
        Self.appendFields(extra, to: &out)
        Self.append("}\n", to: &out)
        swap(&out, &pending)
        scheduleFlush()
    }

    /// Microseconds as milliseconds the way `String(Double)` prints a value rounded to 3
    /// decimals: "0.052", "1.5", "12.0".
    static func appendMillis(micros: UInt64, to out: inout [UInt8]) {
        Timestamp.appendDigits(Int(micros / 1000), width: 1, to: &out)
        out.append(UInt8(ascii: "."))
        var frac = Int(micros % 1000)
        if frac == 0 { out.append(UInt8(ascii: "0")); return }
        var width = 3
        while frac % 10 == 0 { frac /= 10; width -= 1 }
        Timestamp.appendDigits(frac, width: width, to: &out)
    }

    public func info(_ m: String, _ f: [(String, Value)] = []) { log(.info, m, f) }
    public func warn(_ m: String, _ f: [(String, Value)] = []) { log(.warn, m, f) }
    public func error(_ m: String, _ f: [(String, Value)] = []) { log(.error, m, f) }
    public func debug(_ m: String, _ f: [(String, Value)] = []) { log(.debug, m, f) }

    /// Lines dropped because the reader of the log fell too far behind (or went away).
    public var droppedLines: UInt64 { backlog.droppedLines }

    /// Hands this tick's lines to the output without waiting: what the reader cannot take now
    /// stays in the bounded backlog and is retried from a timer. With no running loop (start-up,
    /// shutdown) it waits for the reader instead, a bounded time per stall, so the last lines are
    /// not lost to a reader that is merely slow.
    public func flush() {
        flushScheduled = false
        if !pending.isEmpty {
            backlog.enqueue(pending)
            pending.removeAll(keepingCapacity: pending.count < 64 * 1024)
        }
        let output = self.output
        if backlog.drain({ output.write($0).drainCount }) {
            if let t = retryTimer { loop?.cancel(t); retryTimer = nil }
            return
        }
        if let loop, !loop.isStopped {
            if retryTimer == nil {
                retryTimer = loop.schedule(afterMillis: 10) { [weak self] in
                    guard let self else { return }
                    self.retryTimer = nil
                    self.flush()
                }
            }
            return
        }
        // No loop to retry on: wait for the reader, up to a second per stall.
        while !backlog.isEmpty {
            guard output.waitWritable(millis: 1_000) else { backlog.dropAll(); break }
            backlog.drain { output.write($0).drainCount }
        }
    }

    /// The date-and-seconds part changes once a second; formatting it per line (String
    /// interpolation and padding) cost ~15% of a health request's instructions.
    private var stampSecond: Int64 = .min
    private var stampPrefix: [UInt8] = []

    private func appendTimestamp(_ millis: Int64, to out: inout [UInt8]) {
        let ms = ((millis % 1000) + 1000) % 1000
        let second = (millis - ms) / 1000
        if second != stampSecond {
            stampSecond = second
            stampPrefix.removeAll(keepingCapacity: true)
            Timestamp.appendISO8601(millis: second * 1000, to: &stampPrefix)
            stampPrefix.removeLast(4)  // "000Z": the milliseconds are appended per line
        }
        out.append(contentsOf: stampPrefix)
        Timestamp.appendDigits(Int(ms), width: 3, to: &out)
        out.append(UInt8(ascii: "Z"))
    }

    @inline(__always)
    private static func append(_ s: StaticString, to out: inout [UInt8]) {
        s.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    private static func appendInt(_ i: Int, to out: inout [UInt8]) {
        if i < 0 {
            out.append(UInt8(ascii: "-"))
            if i == .min { out.append(contentsOf: String(i).utf8.dropFirst()); return }
        }
        Timestamp.appendDigits(i < 0 ? -i : i, width: 1, to: &out)
    }

    private func appendEscaped(_ s: String, _ out: inout [UInt8]) {
        JSON.appendEscaped(s, to: &out)
    }
}

/// Wall-clock formatting without Foundation.
public enum Timestamp {
    /// `2026-11-24T21:37:06.123Z`
    public static func iso8601(millis: Int64) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(24)
        appendISO8601(millis: millis, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `2026-11-24T21:37:06.123Z` as bytes, without building strings.
    public static func appendISO8601(millis: Int64, to out: inout [UInt8]) {
        let t = UTCTime(epochSeconds: millis / 1000)
        appendDigits(t.year, width: 4, to: &out)
        out.append(UInt8(ascii: "-"))
        appendDigits(t.month, width: 2, to: &out)
        out.append(UInt8(ascii: "-"))
        appendDigits(t.day, width: 2, to: &out)
        out.append(UInt8(ascii: "T"))
        appendDigits(t.hour, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendDigits(t.minute, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendDigits(t.second, width: 2, to: &out)
        out.append(UInt8(ascii: "."))
        appendDigits(Int(millis % 1000), width: 3, to: &out)
        out.append(UInt8(ascii: "Z"))
    }

    /// Appends a non-negative number zero-padded to `width` digits (more digits if it needs them).
    static func appendDigits(_ value: Int, width: Int, to out: inout [UInt8]) {
        var v = max(0, value)
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[n] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                n += 1
            } while v > 0 && n < d.count
            while n < width && n < d.count {
                d[n] = UInt8(ascii: "0")
                n += 1
            }
            var i = n - 1
            while i >= 0 {
                out.append(d[i])
                i -= 1
            }
        }
    }
}
