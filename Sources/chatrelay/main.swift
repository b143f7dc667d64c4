import ChatAPI
#if canImport(Glibc)
import Glibc
#endif

// Wiring only: everything, including C callbacks, lives in nonisolated library code
// (closures written here would be inferred @MainActor and trap on worker threads).
exit(Application.main(arguments: Array(CommandLine.arguments.dropFirst())))
