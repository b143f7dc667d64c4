#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Why a connection ended.
public enum CloseReason: Sendable, Equatable, CustomStringConvertible {
    /// We closed it.
    case local
    /// The peer closed or reset it.
    case peerClosed
    /// The peer stopped reading and the backlog passed the hard limit.
    case slowConsumer
    case error(SystemError)

    public var description: String {
        switch self {
        case .local: return "closed locally"
        case .peerClosed: return "peer closed"
        case .slowConsumer: return "slow consumer: output backlog over limit"
        case .error(let e): return e.description
        }
    }
}

/// The owner of a connection: told when bytes arrive, when the peer stops sending, when the
/// output backlog crosses a watermark, and when the connection is gone.
public protocol TCPConnectionDelegate: AnyObject {
    /// New bytes are in `connection.readBuffer`; consume what you can.
    func connectionDidRead(_ connection: TCPConnection)
    /// The peer half-closed (EOF/EPOLLRDHUP). Buffered bytes were delivered first.
    func connectionReadDidEnd(_ connection: TCPConnection)
    /// Output crossed the high watermark (false) or drained below the low one (true).
    func connectionWritabilityChanged(_ connection: TCPConnection, isWritable: Bool)
    /// The connection is closed; called exactly once, after which the delegate is dropped.
    func connectionDidClose(_ connection: TCPConnection, reason: CloseReason)
}

public struct TCPConnectionLimits: Sendable {
    /// Read buffer bound; when full, reading stops until the owner consumes (read backpressure).
    public var maxReadBuffer: Int
    public var highWater: Int
    public var lowWater: Int
    public var hardLimit: Int
    /// Bytes written per flush before yielding, so one fast stream cannot starve others
    /// (redis NET_MAX_WRITES_PER_EVENT, NIO writeSpinCount).
    public var writeBudget: Int

    public init(maxReadBuffer: Int = 64 * 1024 + 1024, highWater: Int = 64 * 1024, lowWater: Int = 16 * 1024,
                hardLimit: Int = 8 * 1024 * 1024, writeBudget: Int = 512 * 1024) {
        self.maxReadBuffer = maxReadBuffer
        self.highWater = highWater
        self.lowWater = lowWater
        self.hardLimit = hardLimit
        self.writeBudget = writeBudget
    }
}

/// One non-blocking TCP socket on a loop: a bounded read buffer, an outbound buffer with
/// watermarks, EPOLLOUT armed only while bytes are pending, and the writes of one event (or of
/// the timers and ticks of a pass) coalesced into one send.
public final class TCPConnection: IOHandler {
    public let fd: Int32
    public unowned let loop: EventLoop
    public var delegate: TCPConnectionDelegate?
    public var readBuffer = ByteBuffer()
    public private(set) var outbound: OutboundBuffer
    public private(set) var isClosed = false
    public private(set) var readEnded = false
    /// Free slot for the owner (e.g. a request id) used in logs and state dumps.
    public var label: String = ""

    private let limits: TCPConnectionLimits
    private var token: RegistrationToken?
    private var readingPaused = false
    private var flushScheduled = false
    private var waitingForWritable = false
    private var closeWhenFlushed = false
    private var lingerTimer: TimerID?
    private var connectCallback: ((SystemError?) -> Void)?

    public init(loop: EventLoop, fd: Int32, limits: TCPConnectionLimits = TCPConnectionLimits()) throws(SystemError) {
        self.fd = fd
        self.loop = loop
        self.limits = limits
        outbound = OutboundBuffer(highWater: limits.highWater, lowWater: limits.lowWater, hardLimit: limits.hardLimit)
        token = try loop.register(fd: fd, interest: [.readable, .readHangup], handler: self)
    }

    /// Connects to host:port without blocking; `done` gets nil on success.
    public static func connect(loop: EventLoop, host: String, port: Int, limits: TCPConnectionLimits = TCPConnectionLimits(),
                               done: @escaping (SystemError?) -> Void) throws(SystemError) -> TCPConnection {
        let fd = try Sockets.startConnect(host: host, port: port)
        let c: TCPConnection
        do { c = try TCPConnection(loop: loop, fd: fd, limits: limits) } catch { Syscall.close(fd); throw error }
        c.connectCallback = done
        c.waitingForWritable = true
        c.updateInterest()
        return c
    }

    public var isWritable: Bool { outbound.isWritable }
    public var pendingOutbound: Int { outbound.pending }

    // MARK: Writing

    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard !isClosed, !closeWhenFlushed else { return }
        if outbound.append(bytes) { delegate?.connectionWritabilityChanged(self, isWritable: false) }
        scheduleFlush()
    }

    public func write(_ string: String) {
        guard !isClosed, !closeWhenFlushed else { return }
        if outbound.append(string) { delegate?.connectionWritabilityChanged(self, isWritable: false) }
        scheduleFlush()
    }

    /// Lets `encode` append its bytes straight to the outbound buffer: a frame is serialized once,
    /// where the send will read it, with no staging array in between. `encode` must only append.
    public func write(encoding encode: (inout [UInt8]) -> Void) {
        guard !isClosed, !closeWhenFlushed else { return }
        if outbound.append(encoding: encode) { delegate?.connectionWritabilityChanged(self, isWritable: false) }
        scheduleFlush()
    }

    public func write<S: Sequence>(contentsOf bytes: S) where S.Element == UInt8 {
        guard !isClosed, !closeWhenFlushed else { return }
        if outbound.append(contentsOf: bytes) { delegate?.connectionWritabilityChanged(self, isWritable: false) }
        scheduleFlush()
    }

    private func scheduleFlush() {
        if outbound.overLimit {
            close(reason: .slowConsumer)
            return
        }
        // While EPOLLOUT is armed there is no point trying again per chunk: just queue (docs/reactor-notes.md E2).
        guard !flushScheduled, !waitingForWritable else { return }
        flushScheduled = true
        loop.enqueueFlush(self)
    }

    /// The loop's flush after an event or before sleeping: send what was queued since.
    func flushQueued() {
        flushScheduled = false
        flush()
    }

    /// Sends what the budget allows; arms EPOLLOUT if bytes remain.
    private func flush() {
        guard !isClosed, connectCallback == nil else { return }
        var budget = limits.writeBudget
        while !outbound.isEmpty && budget > 0 {
            let n: Int
            do {
                let r = try Syscall.nonBlocking("send") {
                    outbound.withPendingBytes { send(fd, $0.baseAddress, min($0.count, budget), Int32(MSG_NOSIGNAL)) }
                }
                guard let r else { break }
                n = r
            } catch {
                close(reason: error.code == EPIPE || error.code == ECONNRESET ? .peerClosed : .error(error))
                return
            }
            budget -= n
            if outbound.consume(n) { delegate?.connectionWritabilityChanged(self, isWritable: true) }
            if isClosed { return }  // the delegate may have closed us
        }
        let wantWrite = !outbound.isEmpty
        if wantWrite != waitingForWritable {
            waitingForWritable = wantWrite
            updateInterest()
        }
        if outbound.isEmpty && closeWhenFlushed { startLingeringClose() }
    }

    // MARK: Reading

    /// Frees the read buffer's storage if it is empty: a connection that will read nothing for a
    /// long while (its request is in, its answer streams) does not pin it. The next read
    /// allocates again.
    public func releaseIdleReadBuffer() { readBuffer.releaseIfEmpty() }

    /// Stops reading until `resumeReading` (the owner is not consuming, e.g. mid-response).
    public func pauseReading() {
        guard !readingPaused else { return }
        readingPaused = true
        updateInterest()
    }

    public func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        updateInterest()
        // Bytes may already be buffered; let the owner see them on the next tick.
        if !readBuffer.isEmpty {
            loop.nextTick { [weak self] in
                guard let self, !self.isClosed, !self.readingPaused else { return }
                self.delegate?.connectionDidRead(self)
            }
        }
    }

    private func updateInterest() {
        guard let t = token else { return }
        var i: Interest = []
        if !readEnded && !readingPaused && !closeWhenFlushed { i.formUnion([.readable, .readHangup]) }
        if lingerTimer != nil && !readEnded { i.insert(.readable) }
        if waitingForWritable { i.insert(.writable) }
        do { try loop.modify(t, interest: i) } catch { close(reason: .error(error)) }
    }

    public func handleIO(_ events: IOEvents) {
        if let cb = connectCallback {
            guard events.contains(.writable) || events.contains(.error) || events.contains(.hangup) else { return }
            connectCallback = nil
            waitingForWritable = false
            let err = Sockets.pendingError(fd)
            if err != 0 {
                let e = SystemError("connect", code: err)
                cb(e)
                close(reason: .error(e))
                return
            }
            updateInterest()
            cb(nil)
            if !outbound.isEmpty { scheduleFlush() }
            return
        }
        if events.contains(.readable) || events.contains(.readHangup) || events.contains(.hangup) {
            readAvailable()
            if isClosed { return }
        }
        if events.contains(.error) {
            close(reason: .error(SystemError("socket", code: Sockets.pendingError(fd))))
            return
        }
        if events.contains(.writable) && !isClosed {
            flush()
        }
    }

    private func readAvailable() {
        if lingerTimer != nil {
            // Lingering close: discard what the client still sends until it closes or time runs out.
            var scratch = [UInt8](repeating: 0, count: 16 * 1024)
            let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { close(reason: .local) }
            return
        }
        let room = limits.maxReadBuffer - readBuffer.count
        guard room > 0 else {
            pauseReading()
            return
        }
        var failure: SystemError?
        var gotEOF = false
        let scratch = loop.readScratch
        var got = 0
        while true {
            let n = recv(fd, scratch.baseAddress, min(room, scratch.count), 0)
            if n > 0 { got = n; break }
            if n == 0 { gotEOF = true; break }
            let e = errno
            if e == EINTR { continue }
            if e != EAGAIN && e != EWOULDBLOCK { failure = SystemError("recv", code: e) }
            break
        }
        if got > 0 { readBuffer.append(UnsafeRawBufferPointer(rebasing: scratch[0..<got])) }
        if got > 0 { delegate?.connectionDidRead(self) }
        if isClosed { return }
        if let failure {
            close(reason: failure.code == ECONNRESET ? .peerClosed : .error(failure))
            return
        }
        if gotEOF {
            readEnded = true
            updateInterest()
            if let d = delegate { d.connectionReadDidEnd(self) } else { close(reason: .peerClosed) }
        } else if readBuffer.count >= limits.maxReadBuffer {
            pauseReading()
        }
    }

    // MARK: Closing

    /// Sends what is queued, then half-closes and lingers briefly reading and discarding, so a
    /// client still sending (a refused body) gets our response rather than a reset.
    public func closeAfterFlush() {
        guard !isClosed, !closeWhenFlushed else { return }
        closeWhenFlushed = true
        if outbound.isEmpty && !flushScheduled && !waitingForWritable { startLingeringClose() } else { updateInterest() }
    }

    private func startLingeringClose() {
        guard lingerTimer == nil, !isClosed else { return }
        if readEnded {
            close(reason: .local)
            return
        }
        shutdown(fd, Int32(SHUT_WR))
        lingerTimer = loop.schedule(afterMillis: 2_000) { [weak self] in
            self?.lingerTimer = nil
            self?.close(reason: .local)
        }
        updateInterest()
    }

    /// Closes with a TCP reset (SO_LINGER 0) instead of a FIN: for tests and fault injection.
    public func reset() {
        guard !isClosed else { return }
        var lin = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, socklen_t(MemoryLayout<linger>.size))
        close(reason: .local)
    }

    /// Closes now; the delegate hears `connectionDidClose` once and is then dropped.
    public func close(reason: CloseReason = .local) {
        guard !isClosed else { return }
        isClosed = true
        if let l = lingerTimer { loop.cancel(l); lingerTimer = nil }
        if let t = token { loop.deregister(t); token = nil }
        Syscall.close(fd)
        outbound.removeAll()
        readBuffer.removeAll()
        if let cb = connectCallback {
            connectCallback = nil
            cb(reason == .local ? SystemError("connect", code: ECANCELED) : SystemError("connect", code: ECONNREFUSED))
        }
        let d = delegate
        delegate = nil
        d?.connectionDidClose(self, reason: reason)
    }

    /// One line for the watchdog dump.
    public var stateDescription: String {
        "fd=\(fd) \(label) out=\(outbound.pending) in=\(readBuffer.count) paused=\(readingPaused) waitOut=\(waitingForWritable) readEnded=\(readEnded) closing=\(closeWhenFlushed)"
    }
}
