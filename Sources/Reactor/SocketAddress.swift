#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Sockets: creating listeners and outbound connections, and the options we set on them.
public enum Sockets {
    /// A non-blocking listening socket. `reusePort` lets N worker loops share one port (SO_REUSEPORT),
    /// the kernel spreading connections between them.
    public static func listen(host: String, port: Int, reusePort: Bool, backlog: Int32 = 4096) throws(SystemError) -> Int32 {
        let isV6 = host.contains(":")
        let fd = socket(isV6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(clinux_SOCK_NONBLOCK_CLOEXEC), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if reusePort {
            setsockopt(fd, SOL_SOCKET, Int32(clinux_SO_REUSEPORT), &one, socklen_t(MemoryLayout<Int32>.size))
        }
        let rc: Int32
        if isV6 {
            var addr = sockaddr_in6()
            addr.sin6_family = sa_family_t(AF_INET6)
            addr.sin6_port = UInt16(port).bigEndian
            guard inet_pton(AF_INET6, host, &addr.sin6_addr) == 1 else {
                Syscall.close(fd)
                throw SystemError("inet_pton(\(host))", code: EINVAL)
            }
            rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var addr: sockaddr_in
            do { addr = try ipv4(host, port) } catch {
                Syscall.close(fd)
                throw error
            }
            rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        if rc != 0 {
            let e = SystemError("bind(\(host):\(port))")
            Syscall.close(fd)
            throw e
        }
        if Glibc.listen(fd, backlog) != 0 {
            let e = SystemError("listen")
            Syscall.close(fd)
            throw e
        }
        return fd
    }

    /// The port a socket is bound to (for PORT=0).
    public static func localPort(_ fd: Int32) -> Int {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &ss) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard ok == 0 else { return 0 }
        if ss.ss_family == sa_family_t(AF_INET6) {
            return withUnsafePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) } }
        }
        return withUnsafePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) } }
    }

    /// Starts a non-blocking IPv4 connect; the socket becomes writable when it completes.
    public static func startConnect(host: String, port: Int) throws(SystemError) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(clinux_SOCK_NONBLOCK_CLOEXEC), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        var addr: sockaddr_in
        do { addr = try ipv4(host, port) } catch {
            Syscall.close(fd)
            throw error
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 && errno != EINPROGRESS {
            let e = SystemError("connect(\(host):\(port))")
            Syscall.close(fd)
            throw e
        }
        setNoDelay(fd)
        return fd
    }

    /// An IPv4 address literal (or `localhost`) and port.
    private static func ipv4(_ host: String, _ port: Int) throws(SystemError) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &addr.sin_addr) == 1 else {
            throw SystemError("inet_pton(\(host))", code: EINVAL)
        }
        return addr
    }

    /// Pending error of a socket (SO_ERROR), 0 when none.
    public static func pendingError(_ fd: Int32) -> Int32 {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        return err
    }

    /// Token frames are small and latency matters more than packet count.
    public static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Closes a socket this layer handed out that was never registered with a loop (close(2), not retried on EINTR).
    public static func close(_ fd: Int32) { Syscall.close(fd) }
}
