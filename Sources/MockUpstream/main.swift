#if canImport(Glibc)
import Glibc
#endif
import Reactor

// mock-upstream [--host H] [--port P] [--tokens N] [--delay-ms D] [--first-delay-ms F] [--key K]
// Prints "mock-upstream listening on H:P" once ready; exits on SIGTERM/SIGINT.
MockMain.run(Array(CommandLine.arguments.dropFirst()))
