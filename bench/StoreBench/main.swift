#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Storage

// Chat-turn writes per second through ChatStore on one loop (one worker), to compare with pgbench
// running the same three statements (bench/store/turn.sql) on the same database and connections.
//
//   store-bench --conninfo "host=/tmp/… dbname=chatrelay user=postgres" --connections 4 --concurrency 64 --seconds 10 [--mode three|turn]
//
// mode three: appendUserMessage, openAssistantMessage, finalizeAssistantMessage (three round trips, as pgbench)
// mode turn:  beginTurn (one pipelined round trip: touch, user insert, assistant insert, history) + finalize
StoreBenchMain.run(Array(CommandLine.arguments.dropFirst()))
