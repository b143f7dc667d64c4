import CLinux

/// What a registration wants to hear about. Level-triggered everywhere, as libuv and NIO do:
/// libpq and curl/OpenSSL buffer internally and do not promise to drain sockets to EAGAIN.
public struct Interest: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let readable = Interest(rawValue: 1 << 0)
    public static let writable = Interest(rawValue: 1 << 1)
    /// Peer half-close (EPOLLRDHUP): a client that vanished is noticed without reading.
    public static let readHangup = Interest(rawValue: 1 << 2)

    var epollMask: UInt32 {
        var m: UInt32 = 0
        if contains(.readable) { m |= EPOLLIN.rawValue }
        if contains(.writable) { m |= EPOLLOUT.rawValue }
        if contains(.readHangup) { m |= EPOLLRDHUP.rawValue }
        return m
    }
}

/// What epoll reported, without `EPOLL_EVENTS` leaking into callers.
public struct IOEvents: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let readable = IOEvents(rawValue: 1 << 0)
    public static let writable = IOEvents(rawValue: 1 << 1)
    public static let readHangup = IOEvents(rawValue: 1 << 2)
    public static let hangup = IOEvents(rawValue: 1 << 3)
    public static let error = IOEvents(rawValue: 1 << 4)

    init(epoll m: UInt32) {
        var e: IOEvents = []
        if m & EPOLLIN.rawValue != 0 { e.insert(.readable) }
        if m & EPOLLOUT.rawValue != 0 { e.insert(.writable) }
        if m & EPOLLRDHUP.rawValue != 0 { e.insert(.readHangup) }
        if m & EPOLLHUP.rawValue != 0 { e.insert(.hangup) }
        if m & EPOLLERR.rawValue != 0 { e.insert(.error) }
        self = e
    }

    public var description: String {
        var parts: [String] = []
        if contains(.readable) { parts.append("in") }
        if contains(.writable) { parts.append("out") }
        if contains(.readHangup) { parts.append("rdhup") }
        if contains(.hangup) { parts.append("hup") }
        if contains(.error) { parts.append("err") }
        return parts.joined(separator: "|")
    }
}

/// Whoever owns an fd registered on the loop.
public protocol IOHandler: AnyObject {
    func handleIO(_ events: IOEvents)
}

/// Proof of one registration. The generation makes events for a closed-and-reused fd number
/// recognisable as stale (NIO's registration id, nginx's instance bit).
public struct RegistrationToken: Hashable, Sendable {
    public let fd: Int32
    let generation: UInt32
}
