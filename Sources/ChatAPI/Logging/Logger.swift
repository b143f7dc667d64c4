#if canImport(Glibc)
import Glibc
#endif
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

    public init(format: Config.LogFormat, level: Config.LogLevel, worker: Int, loop: EventLoop?) {
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
        var line: [UInt8] = []
        line.reserveCapacity(256)
        switch format {
        case .json:
            line.append(contentsOf: #"{"time":""#.utf8)
            line.append(contentsOf: Timestamp.iso8601(millis: wallClockMillis()).utf8)
            line.append(contentsOf: #"","level":""#.utf8)
            line.append(contentsOf: lvl.rawValue.utf8)
            line.append(contentsOf: #"","worker":"#.utf8)
            line.append(contentsOf: String(worker).utf8)
            line.append(contentsOf: #","msg":""#.utf8)
            appendEscaped(message, &line)
            line.append(0x22)
            for (k, v) in fields {
                line.append(contentsOf: ",\"".utf8)
                appendEscaped(k, &line)
                line.append(contentsOf: "\":".utf8)
                switch v {
                case .string(let s): line.append(0x22); appendEscaped(s, &line); line.append(0x22)
                case .int(let i): line.append(contentsOf: String(i).utf8)
                case .double(let d): line.append(contentsOf: (d.isFinite ? String(d) : "null").utf8)
                case .bool(let b): line.append(contentsOf: (b ? "true" : "false").utf8)
                }
            }
            line.append(contentsOf: "}\n".utf8)
        case .text:
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
        }
        pending.append(contentsOf: line)
        if let loop, !loop.isStopped {
            if !flushScheduled {
                flushScheduled = true
                loop.beforeNextSleep { [weak self] in self?.flush() }
            }
        } else {
            flush()
        }
    }

    public func info(_ m: String, _ f: [(String, Value)] = []) { log(.info, m, f) }
    public func warn(_ m: String, _ f: [(String, Value)] = []) { log(.warn, m, f) }
    public func error(_ m: String, _ f: [(String, Value)] = []) { log(.error, m, f) }
    public func debug(_ m: String, _ f: [(String, Value)] = []) { log(.debug, m, f) }

    public func flush() {
        flushScheduled = false
        var off = 0
        while off < pending.count {
            let n = pending.withUnsafeBytes { write(1, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { if errno == EINTR { continue }; break }
            off += n
        }
        pending.removeAll(keepingCapacity: pending.count < 64 * 1024)
    }

    private func appendEscaped(_ s: String, _ out: inout [UInt8]) {
        JSON.appendEscaped(s, to: &out)
    }
}

/// Wall-clock formatting without Foundation.
public enum Timestamp {
    /// `2026-11-24T21:37:06.123Z`
    public static func iso8601(millis: Int64) -> String {
        var t = time_t(millis / 1000)
        var tm = tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(millis % 1000), 3))Z"
    }
}
