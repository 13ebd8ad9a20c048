#!/usr/bin/env bash
# `make soak`: the [load] cases of hardening.md §3. Runs every
# scripts/hardening/tNN-*.sh in turn, each bounded by `timeout` (its
# `# limit: SECONDS` line), prints a summary table and exits 1 if any failed.
# Logs: bench/results/soak/ (git-ignored). See scripts/hardening/README.md.
#
# Environment: ONLY="t38 t44" runs a subset; SOAK=5m (T48's duration, e.g.
# SOAK=30m); DATAKIT_BIN, TOOLS_BIN, GO as lib.sh says.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HARD=$ROOT/scripts/hardening
OUT=$ROOT/bench/results/soak
GO=${GO:-go}
SOAK=${SOAK:-5m}
export GO SOAK TOOLS_BIN=${TOOLS_BIN:-$ROOT/.tools/bin}

seconds() { # 90s, 5m, 1h -> seconds
	awk -v d="$1" 'BEGIN { n = d + 0; u = substr(d, length(d));
		if (u == "m") n *= 60; else if (u == "h") n *= 3600; print int(n) }'
}
SOAK_SECONDS=$(seconds "$SOAK")
export SOAK_SECONDS

BUILD=$(mktemp -d /tmp/datakit-soak.XXXXXX)
trap 'rm -rf "$BUILD"' EXIT
if [[ -z ${DATAKIT_BIN:-} ]]; then
	(cd "$ROOT" && $GO build -o bin/datakit ./cmd/datakit) || exit 1
	DATAKIT_BIN=$ROOT/bin/datakit
fi
(cd "$ROOT" && $GO build -o "$BUILD/fake" ./scripts/hardening/fake) || exit 1
export DATAKIT_BIN FAKE_BIN=$BUILD/fake

mkdir -p "$OUT"
START=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
ROWS=()
failed=0
for script in "$HARD"/t[0-9][0-9]-*.sh; do
	name=$(basename "$script" .sh)
	if [[ -n ${ONLY:-} && " $ONLY " != *" ${name%%-*} "* ]]; then continue; fi
	limit=$(awk '/^# limit: / {print $3; exit}' "$script")
	limit=${limit:-300}
	if [[ $limit == SOAK+* ]]; then limit=$((SOAK_SECONDS + ${limit#SOAK+})); fi
	echo "=== $name (limit ${limit}s)"
	t0=$SECONDS
	timeout -k 20 "$limit" bash "$script" 2>&1 | tee "$OUT/$name.log"
	rc=${PIPESTATUS[0]}
	took=$((SECONDS - t0))
	result=$(grep -E "^RESULT $name " "$OUT/$name.log" | tail -n 1)
	verdict=$(awk '{print $3}' <<<"$result")
	numbers=$(cut -d' ' -f4- <<<"$result")
	if [[ -z $verdict ]]; then
		verdict=FAIL
		numbers="no result (exit $rc$([[ $rc == 124 ]] && echo ", timed out after ${limit}s"))"
	elif [[ $verdict == PASS && $rc -ne 0 ]]; then
		verdict=FAIL
		numbers="exit $rc after PASS: $numbers"
	fi
	[[ $verdict != FAIL ]] || failed=1
	ROWS+=("$(printf '%-20s %-5s %5ss  %s' "$name" "$verdict" "$took" "$numbers")")
done

{
	echo
	echo "make soak — $START, commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "machine: $(nproc --all) CPUs, load average before $LOAD_START, after $(cut -d' ' -f1-3 /proc/loadavg) (a shared, loaded machine skews latency)"
	printf '%-20s %-5s %6s  %s\n' scenario result time "measured"
	printf '%s\n' "${ROWS[@]+"${ROWS[@]}"}"
} | tee "$OUT/summary.txt"
exit "$failed"
