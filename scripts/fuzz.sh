#!/usr/bin/env bash
# Fuzz the parsers with libFuzzer + AddressSanitizer (+ LeakSanitizer).
#
#   scripts/fuzz.sh [seconds] [target...]     # default: 60 seconds, all targets
#
# Targets (each an entry point in Fuzz/, with its seed corpus in Fuzz/corpus/<target>; what each
# one checks is written at the top of its file, and Fuzz/README.md says how to run one alone):
#   http      the HTTP/1.1 request parser      Sources/HTTP/Codec/*.swift
#   json      JSON scanner, parser and writer  Sources/JSONCore/*.swift
#   sse       the SSE decoder                  Sources/Providers/SSEDecoder.swift
#   provider  OpenAI/Anthropic/Gemini stream decoders over SSE and JSONCore
#
# `seconds` is the TOTAL fuzzing budget, split evenly across the targets run (at least 1 s
# each), so `scripts/fuzz.sh 60` fuzzes for 60 s in all whether one target runs or four: CI time
# stays what it was when only the HTTP parser was fuzzed, plus about a minute of compilation.
# To fuzz one target for longer, name it: `scripts/fuzz.sh 600 json`.
#
# Each target is compiled straight through swiftc, so no SwiftPM build directory is touched. The
# committed seed corpora are copied to a temporary directory first: the run never modifies the
# repo. Exits non-zero on a crash, an invariant failure, a leak, a per-input timeout, or a build
# failure (after running every target); the offending inputs are kept in the temporary directory,
# whose path is printed.
#
# Environment: SWIFTC (default: /opt/swift/usr/bin/swiftc if present, else swiftc from PATH),
# FUZZ_JOBS is not supported on purpose: one process keeps the figures comparable run to run.
set -euo pipefail

all_targets=(http json sse provider)
seconds="${1:-60}"
case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [seconds] [${all_targets[*]}]..." >&2; exit 2 ;;
esac
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then targets=("${all_targets[@]}"); fi
for target in "${targets[@]}"; do
    case " ${all_targets[*]} " in
        *" $target "*) ;;
        *) echo "fuzz.sh: unknown target '$target' (known: ${all_targets[*]})" >&2; exit 2 ;;
    esac
done
per_target=$(( seconds / ${#targets[@]} ))
if [[ $per_target -lt 1 ]]; then per_target=1; fi

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

workdir="$(mktemp -d "${TMPDIR:-/tmp}/parser-fuzz.XXXXXX")"
keep_workdir=0
cleanup() { if [[ $keep_workdir -eq 0 ]]; then rm -rf "$workdir"; fi; }
trap cleanup EXIT

# lld avoids a wall of harmless "cannot export local symbol __asan_*" warnings from gold.
linker=()
if [[ -x "$(dirname "$swiftc")/ld.lld" ]]; then linker=(-use-ld=lld); fi
flags=(-sanitize=fuzzer,address -parse-as-library -O)

# Builds Fuzz/<target> into $workdir/<target>-fuzz; returns non-zero with the log on failure.
build() {
    local target="$1" out="$workdir/$1-fuzz" log="$workdir/$1-build.log"
    case "$target" in
        http) "$swiftc" "${flags[@]}" "${linker[@]}" Sources/HTTP/Codec/*.swift Fuzz/HTTPParserFuzz.swift -o "$out" ;;
        json) "$swiftc" "${flags[@]}" "${linker[@]}" Sources/JSONCore/*.swift Fuzz/JSONParserFuzz.swift \
                  Fuzz/JSONReferenceParser.swift -o "$out" ;;
        sse) "$swiftc" "${flags[@]}" "${linker[@]}" Sources/Providers/SSEDecoder.swift Fuzz/SSEDecoderFuzz.swift \
                  Fuzz/SSEReferenceDecoder.swift -o "$out" ;;
        provider)
            # The providers `import JSONCore`, so JSONCore is compiled as a module of its own first.
            local provider_sources
            mapfile -t provider_sources < <(find Sources/Providers -name '*.swift' | sort)
            mkdir -p "$workdir/modules" &&
            "$swiftc" "${flags[@]}" -wmo -module-name JSONCore -emit-module \
                -emit-module-path "$workdir/modules/JSONCore.swiftmodule" -c Sources/JSONCore/*.swift \
                -o "$workdir/JSONCore.o" &&
            "$swiftc" "${flags[@]}" "${linker[@]}" -I "$workdir/modules" -module-name ProviderFuzz \
                "${provider_sources[@]}" Fuzz/ProviderStreamFuzz.swift \
                "$workdir/JSONCore.o" -o "$out" ;;
    esac >"$log" 2>&1 || { cat "$log" >&2; echo "fuzz.sh: building the $target target failed" >&2; return 1; }
}

# Runs one target for $per_target seconds; returns non-zero (log and inputs kept) on a finding.
fuzz() {
    local target="$1" dir="$workdir/$1"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp Fuzz/corpus/"$target"/* "$dir/corpus/"
    echo "fuzz.sh: $target: fuzzing for ${per_target}s (seed corpus: $(ls Fuzz/corpus/"$target" | wc -l) files)"
    local status
    set +e
    # -timeout: any single input taking over 10 s is a hang (exit non-zero).
    # -rss_limit_mb: the parsers' buffers are bounded by their limits; 2 GB means a real blow-up.
    # detect_leaks is on by default with ASan on Linux; spelled out so nobody wonders.
    # SWIFT_BACKTRACE=enable=no: Swift's own crash backtracer reads raw stack memory, which ASan
    # reports as a second, bogus stack-buffer-underflow that buries the real failure message.
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" \
        "$workdir/$target-fuzz" "$dir/corpus" \
        -max_total_time="$per_target" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/" >"$dir/fuzz.log" 2>&1
    status=$?
    set -e

    # Figures: the final stats line ("#N DONE cov: C ft: F corp: ...") and the stat:: block.
    grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$dir/fuzz.log" | tail -2 || true
    grep -E '^(stat::|Done )' "$dir/fuzz.log" || true

    if [[ $status -ne 0 ]] || ls "$dir/artifacts/"* >/dev/null 2>&1; then
        echo "----- $target fuzzer log (failure) -----" >&2
        grep -m1 -E 'Fatal error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|ALARM' "$dir/fuzz.log" >&2 || true
        tail -40 "$dir/fuzz.log" >&2
        echo "fuzz.sh: $target FAILED (exit $status); inputs and log kept in $dir" >&2
        ls -l "$dir/artifacts/" >&2 || true
        return 1
    fi
    echo "fuzz.sh: $target: OK, no crash, leak or timeout in ${per_target}s"
}

echo "fuzz.sh: building ${targets[*]} with $("$swiftc" --version 2>/dev/null | head -1)"
for target in "${targets[@]}"; do
    if ! build "$target"; then exit 2; fi
done

failed=()
for target in "${targets[@]}"; do
    if ! fuzz "$target"; then failed+=("$target"); fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
    keep_workdir=1
    echo "fuzz.sh: FAILED: ${failed[*]}; inputs and logs kept in $workdir" >&2
    exit 1
fi
echo "fuzz.sh: OK, no crash, leak or timeout in ${seconds}s over ${targets[*]}"
