#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Process-wide signal set-up. Call `blockTermination()` first thing in main, before any thread
/// (ours or curl's resolver) exists, so SIGTERM/SIGINT (drain) and SIGHUP (reload) are only ever
/// seen through a signalfd.
public enum ProcessSignals {
    public static let termination: [Int32] = [SIGTERM, SIGINT]
    public static let reload: Int32 = SIGHUP

    public static func blockTermination() {
        // CURLOPT_NOSIGNAL stops libcurl from ignoring SIGPIPE for us; our sends use MSG_NOSIGNAL too.
        signal(SIGPIPE, SIG_IGN)
        let all = termination + [reload]
        _ = all.withUnsafeBufferPointer { clinux_block_signals($0.baseAddress, Int32($0.count)) }
    }
}

/// Delivers signals (by default SIGTERM/SIGINT) to a loop through a signalfd.
public final class SignalWatcher: IOHandler {
    private let fd: Int32
    private var token: RegistrationToken?
    private unowned let loop: EventLoop
    private let onSignal: (Int32) -> Void

    public init(loop: EventLoop, signals: [Int32] = ProcessSignals.termination, onSignal: @escaping (Int32) -> Void) throws(SystemError) {
        let fd = signals.withUnsafeBufferPointer { clinux_signalfd_for($0.baseAddress, Int32($0.count)) }
        guard fd >= 0 else { throw SystemError("signalfd") }
        self.fd = fd
        self.loop = loop
        self.onSignal = onSignal
        do { token = try loop.register(fd: fd, interest: .readable, handler: self) } catch {
            Syscall.close(fd)
            throw error
        }
    }

    public func handleIO(_ events: IOEvents) {
        while true {
            let sig = clinux_signalfd_read(fd)
            if sig <= 0 { return }
            onSignal(sig)
        }
    }

    public func close() {
        if let t = token { loop.deregister(t); Syscall.close(fd); token = nil }
    }

    deinit { close() }
}

/// Starts a named OS thread. The closure must be `@Sendable`: closures written in main are
/// otherwise inferred `@MainActor` and trap on another thread (docs/reactor-notes.md B).
public enum ReactorThread {
    public static func spawn(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t? {
        final class Box: @unchecked Sendable {  // handed to exactly one thread, read once
            let body: @Sendable () -> Void
            let name: String
            init(_ b: @escaping @Sendable () -> Void, _ n: String) { body = b; name = n }
        }
        let box = Unmanaged.passRetained(Box(body, name)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            guard let arg else { return nil }
            let b = Unmanaged<Box>.fromOpaque(arg).takeRetainedValue()
            b.name.withCString { clinux_set_thread_name($0) }
            b.body()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            return nil
        }
        return tid
    }

    public static func join(_ t: pthread_t) { pthread_join(t, nil) }
}
