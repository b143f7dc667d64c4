#!/usr/bin/env bash
# Fuzz the HTTP/1.1 request parser with libFuzzer + AddressSanitizer (+ LeakSanitizer).
#
#   scripts/fuzz.sh [seconds]      # default 60
#
# Compiles Sources/HTTP/Codec/*.swift (stdlib-only by design) with Fuzz/HTTPParserFuzz.swift
# straight through swiftc, so no SwiftPM build directory is touched. The committed seed corpus
# (Fuzz/corpus) is copied to a temporary directory first: the run never modifies the repo.
# Exits non-zero on a crash, an invariant failure, a leak, a per-input timeout, or a build failure;
# the offending input is kept in the temporary directory, whose path is printed.
#
# Environment: SWIFTC (default: /opt/swift/usr/bin/swiftc if present, else swiftc from PATH),
# FUZZ_JOBS is not supported on purpose: one process keeps the figures comparable run to run.
set -euo pipefail

seconds="${1:-60}"
case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [seconds]" >&2; exit 2 ;;
esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

if [[ -n "${SWIFTC:-}" ]]; then
    swiftc="$SWIFTC"
elif [[ -x /opt/swift/usr/bin/swiftc ]]; then
    swiftc=/opt/swift/usr/bin/swiftc
else
    swiftc="$(command -v swiftc || true)"
fi
if [[ -z "$swiftc" ]]; then
    echo "fuzz.sh: swiftc not found (set SWIFTC)" >&2
    exit 2
fi

# The fuzzer and ASan/LSan runtimes ship with the Swift toolchain's clang resource directory
# (lib/clang/*/lib/linux/libclang_rt.{fuzzer,asan}-x86_64.a), so Debian's libclang-rt-*-dev is
# not needed. Check up front to turn a cryptic link error into an actionable message.
toolchain="$(cd "$(dirname "$swiftc")/.." && pwd)"
if ! ls "$toolchain"/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 \
    && ! ls "$toolchain"/lib/swift/clang/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
    echo "fuzz.sh: libFuzzer runtime (libclang_rt.fuzzer) not found in $toolchain;" >&2
    echo "         install a full Swift toolchain (swift.org) that ships compiler-rt." >&2
    exit 2
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/http-fuzz.XXXXXX")"
keep_workdir=0
cleanup() { if [[ $keep_workdir -eq 0 ]]; then rm -rf "$workdir"; fi; }
trap cleanup EXIT

# lld avoids a wall of harmless "cannot export local symbol __asan_*" warnings from gold.
linker=()
if [[ -x "$(dirname "$swiftc")/ld.lld" ]]; then linker=(-use-ld=lld); fi

echo "fuzz.sh: building with $("$swiftc" --version 2>/dev/null | head -1)"
if ! "$swiftc" -sanitize=fuzzer,address -parse-as-library -O "${linker[@]}" \
    Sources/HTTP/Codec/*.swift Fuzz/HTTPParserFuzz.swift -o "$workdir/http-fuzz" >"$workdir/build.log" 2>&1; then
    cat "$workdir/build.log" >&2
    echo "fuzz.sh: build failed" >&2
    exit 2
fi

mkdir -p "$workdir/corpus" "$workdir/artifacts"
cp Fuzz/corpus/* "$workdir/corpus/"

echo "fuzz.sh: fuzzing for ${seconds}s (seed corpus: $(ls Fuzz/corpus | wc -l) files)"
set +e
# -timeout: any single input taking over 10 s is a hang (exit non-zero).
# -rss_limit_mb: the parser's buffers are bounded by its limits; 2 GB means a real blow-up.
# detect_leaks is on by default with ASan on Linux; spelled out so nobody wonders.
# SWIFT_BACKTRACE=enable=no: Swift's own crash backtracer reads raw stack memory, which ASan
# reports as a second, bogus stack-buffer-underflow that buries the real failure message.
SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" \
    "$workdir/http-fuzz" "$workdir/corpus" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="$workdir/artifacts/" >"$workdir/fuzz.log" 2>&1
status=$?
set -e

# Figures: the final stats line ("#N DONE cov: C ft: F corp: ...") and the stat:: block.
grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$workdir/fuzz.log" | tail -2 || true
grep -E '^(stat::|Done )' "$workdir/fuzz.log" || true

if [[ $status -ne 0 ]] || ls "$workdir/artifacts/"* >/dev/null 2>&1; then
    keep_workdir=1
    echo "----- fuzzer log (failure) -----" >&2
    grep -m1 -E 'Fatal error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|ALARM' "$workdir/fuzz.log" >&2 || true
    tail -40 "$workdir/fuzz.log" >&2
    echo "fuzz.sh: FAILED (exit $status); inputs and log kept in $workdir" >&2
    ls -l "$workdir/artifacts/" >&2 || true
    exit $(( status == 0 ? 1 : status ))
fi
echo "fuzz.sh: OK, no crash, leak or timeout in ${seconds}s"
