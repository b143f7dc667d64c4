#if canImport(Glibc)
import Glibc
#endif

extension ReactorThread {
    /// A started thread, as `spawn` returns it and `join` takes it.
    public typealias Handle = pthread_t

    /// Blocks the calling thread for about `microseconds` (usleep). Start-up and tests only: never on a loop.
    public static func sleep(microseconds: UInt32) { _ = usleep(microseconds) }

    /// The processors online now (sysconf(_SC_NPROCESSORS_ONLN)), at least 1.
    public static var onlineProcessorCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}
