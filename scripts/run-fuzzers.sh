#!/usr/bin/env bash
# Runs every fuzz_* binary in the fuzz build for a few seconds from its seed corpus.
set -euo pipefail
BUILD=$1
SECONDS_EACH=${2:-20}
failed=0
for bin in "$BUILD"/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  corpus="tests/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null || true
  echo "fuzzing $name for ${SECONDS_EACH}s"
  # Parsers that run in a child process (see src/importers/isolated.h) may crash there by design;
  # artifacts go to the scratch folder, and only a crash of the fuzzed process itself fails.
  # TMPDIR: files a target writes for its parser go to a scratch folder removed below.
  scratch=$(mktemp -d)
  if ! TMPDIR="$scratch" LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp "$bin" -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -max_len=1048576 -print_final_stats=0 -artifact_prefix="$work/" "$work" > "$work.log" 2>&1; then
    echo "FAILED: $name"; tail -40 "$work.log"; failed=1
    # The input that crashed it is kept for the regression corpus (the scratch folder is removed).
    mkdir -p "$BUILD/crashes/$name" && cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$BUILD/crashes/$name/" 2>/dev/null || true
    echo "crash inputs kept in $BUILD/crashes/$name/"
  fi
  rm -rf "$work" "$work.log" "$scratch"
done
exit $failed
