#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One server-sent event, borrowed from the decoder's buffers: valid only inside the callback.
/// Providers compare and scan the bytes in place, so the hot path allocates nothing.
public struct SSEEventView {
    /// The `event:` field's value, or nil when the event had none.
    public let event: UnsafeRawBufferPointer?
    /// All `data:` lines joined with `\n`.
    public let data: UnsafeRawBufferPointer

    /// Whether the event name is exactly `name`.
    @inline(__always)
    public func isEvent(_ name: StaticString) -> Bool {
        guard let event else { return false }
        return SSEEventView.equal(event, name)
    }

    /// Whether the data is exactly `text` (e.g. `[DONE]`).
    @inline(__always)
    public func dataIs(_ text: StaticString) -> Bool { SSEEventView.equal(data, text) }

    public var eventName: String? { event.map { String(decoding: $0, as: UTF8.self) } }
    public var dataString: String { String(decoding: data, as: UTF8.self) }

    @inline(__always)
    static func equal(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        guard bytes.count == n else { return false }
        let p = text.utf8Start
        for i in 0..<n where bytes[i] != p[i] { return false }
        return true
    }
}

/// An owned copy of an event, for tests and logs.
public struct SSEEvent: Sendable, Equatable {
    public var event: String?
    public var data: String

    public init(event: String?, data: String) {
        self.event = event
        self.data = data
    }

    public init(_ view: SSEEventView) {
        self.init(event: view.eventName, data: view.dataString)
    }
}

/// The stream broke the decoder's bounds.
public struct SSEError: Error, Sendable, Equatable {
    public var message: String
}

/// Incremental `text/event-stream` parser (WHATWG rules as summarised in docs/wire-formats.md §1), shared
/// by every provider. Feed it whatever the transport delivers; it buffers only the unfinished
/// line and the event being assembled, both bounded.
public struct SSEDecoder {
    /// Longest line, and largest assembled event, accepted before failing instead of growing.
    public let maxLineBytes: Int
    var line: [UInt8] = []
    var data: [UInt8] = []
    var eventName: [UInt8] = []
    var hasData = false
    var hasEventName = false
    /// The previous chunk ended in CR: an LF at the start of the next one belongs to it.
    var pendingCR = false

    public init(maxLineBytes: Int = 1 << 20) {
        // No up-front reservations: the buffers grow to the longest line once and keep that,
        // and a held stream should not pay for capacity it never uses.
        self.maxLineBytes = maxLineBytes
    }

    /// Consumes `bytes`, calling `onEvent` for every event completed by them.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ onEvent: (SSEEventView) -> Void) throws(SSEError) {
        let n = bytes.count
        guard n > 0, let base = bytes.baseAddress else { return }
        var i = 0
        if pendingCR {
            pendingCR = false
            if bytes[0] == 0x0A { i = 1 }
        }
        // The usual event arrives whole in one read: its single data line is handed to `onEvent`
        // straight from `bytes` instead of being copied into `data` first. Whatever is still
        // borrowed when this call returns (or throws) is copied, since `bytes` is not ours after.
        var borrowed: UnsafeRawBufferPointer?
        defer {
            if let borrowed { data.append(contentsOf: borrowed) }
        }
        // Position of the next LF at or after `i` (`n` when there is none), kept across lines so
        // that a run of CR-only line ends does not search the rest of the buffer once per line.
        var nextLF = -1
        while i < n {
            if nextLF < i { nextLF = Self.find(0x0A, base, from: i, to: n) }
            var j = Self.find(0x0D, base, from: i, to: nextLF)
            if j == n {
                guard line.count + (n - i) <= maxLineBytes else { throw lineTooLong() }
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<n]))
                return
            }
            if line.isEmpty {
                guard j - i <= maxLineBytes else { throw lineTooLong() }
                if let error = processLine(UnsafeRawBufferPointer(rebasing: bytes[i..<j]), inInput: true, &borrowed, onEvent) { throw error }
            } else {
                guard line.count + (j - i) <= maxLineBytes else { throw lineTooLong() }
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<j]))
                // Moved out so processing (which mutates other buffers) does not overlap `line`.
                var whole: [UInt8] = []
                swap(&whole, &line)
                defer {
                    whole.removeAll(keepingCapacity: true)
                    swap(&whole, &line)
                }
                // `whole` is emptied right after, so nothing may be borrowed from it.
                if let error = whole.withUnsafeBytes({ processLine($0, inInput: false, &borrowed, onEvent) }) { throw error }
            }
            if bytes[j] == 0x0D {
                if j + 1 < n {
                    if bytes[j + 1] == 0x0A { j += 1 }
                } else {
                    pendingCR = true
                }
            }
            i = j + 1
        }
    }

    /// Offset of the first `byte` in `base[from..<to]`, or `to` when there is none.
    @inline(__always)
    static func find(_ byte: UInt8, _ base: UnsafeRawPointer, from: Int, to: Int) -> Int {
        guard from < to, let hit = memchr(base + from, Int32(byte), to - from) else { return to }
        return UnsafeRawPointer(hit) - base
    }

    /// End of body. A final line or event missing its terminator is still delivered: some
    /// servers (Gemini has no end marker at all) close right after the last payload.
    public mutating func finish(_ onEvent: (SSEEventView) -> Void) throws(SSEError) {
        var borrowed: UnsafeRawBufferPointer?
        if !line.isEmpty {
            var whole: [UInt8] = []
            swap(&whole, &line)
            if let error = whole.withUnsafeBytes({ processLine($0, inInput: false, &borrowed, onEvent) }) { throw error }
        }
        _ = processLine(UnsafeRawBufferPointer(start: nil, count: 0), inInput: false, &borrowed, onEvent)
        pendingCR = false
    }

    /// Handles one complete line; returns the error that stops the stream, if any. `inInput`: `l`
    /// lies in the bytes given to the current `feed`, so a first data line may stay there (in
    /// `borrowed`) until the event is dispatched or `feed` returns.
    mutating func processLine(_ l: UnsafeRawBufferPointer, inInput: Bool,
                              _ borrowed: inout UnsafeRawBufferPointer?, _ onEvent: (SSEEventView) -> Void) -> SSEError? {
        guard !l.isEmpty else {
            dispatch(borrowed, onEvent)
            borrowed = nil
            return nil
        }
        if l[0] == UInt8(ascii: ":") { return nil }
        var colon = 0
        while colon < l.count && l[colon] != UInt8(ascii: ":") { colon += 1 }
        let name = UnsafeRawBufferPointer(rebasing: l[0..<colon])
        var valueStart = min(colon + 1, l.count)
        if valueStart < l.count && l[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        let value = UnsafeRawBufferPointer(rebasing: l[valueStart..<l.count])
        if SSEEventView.equal(name, "data") {
            // A second data line joins the first with LF: the first must be in `data` by then.
            if let first = borrowed {
                data.append(contentsOf: first)
                borrowed = nil
            }
            // Checked before anything is appended, the joining LF included, so a refused event
            // never leaves the buffer past its bound.
            let separator = hasData ? 1 : 0
            guard data.count + separator + value.count <= maxLineBytes else { return SSEError(message: "SSE event larger than \(maxLineBytes) bytes") }
            if !hasData, inInput {
                borrowed = value
            } else {
                if hasData { data.append(0x0A) }
                data.append(contentsOf: value)
            }
            hasData = true
        } else if SSEEventView.equal(name, "event") {
            eventName.removeAll(keepingCapacity: true)
            eventName.append(contentsOf: value)
            hasEventName = true
        }
        // id:, retry: and unknown fields carry nothing the gateway uses.
        return nil
    }

    /// `borrowed`, when set, is the event's whole data (and `data` is empty).
    mutating func dispatch(_ borrowed: UnsafeRawBufferPointer?, _ onEvent: (SSEEventView) -> Void) {
        defer {
            data.removeAll(keepingCapacity: true)
            eventName.removeAll(keepingCapacity: true)
            hasData = false
            hasEventName = false
        }
        // Per WHATWG, an event without data lines is not dispatched.
        guard hasData else { return }
        let named = hasEventName
        if let borrowed {
            eventName.withUnsafeBytes { e in
                onEvent(SSEEventView(event: named ? e : nil, data: borrowed))
            }
            return
        }
        data.withUnsafeBytes { d in
            eventName.withUnsafeBytes { e in
                onEvent(SSEEventView(event: named ? e : nil, data: d))
            }
        }
    }

    func lineTooLong() -> SSEError {
        SSEError(message: "SSE line longer than \(maxLineBytes) bytes")
    }
}
