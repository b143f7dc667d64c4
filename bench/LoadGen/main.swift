// chatrelay-bench: SSE load generator on one reactor loop. See bench/README.md and `--help`.
LoadGenMain.run(Array(CommandLine.arguments.dropFirst()))
