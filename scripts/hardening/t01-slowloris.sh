#!/usr/bin/env bash
# T01 Slowloris on headers (hardening.md §3.1, load part):
# `slowhttptest -H -c 500 -i 10 -r 100 -l 60` against the proxy beside
# `hey -z 20s -c 20 /ok`, compared with the same hey run before the attack.
# Correct: every slow connection closed at client_header_timeout (10 s; all
# 500 are opened within 5 s, so all closed by 18 s with a 3 s margin); hey
# p99 ≤ 2× baseline; no hey request fails; slowhttptest's own probe never
# finds the service unavailable.
# limit: 200
source "$(dirname "$0")/lib.sh"
need_tool hey
need_apt slowhttptest slowhttptest

start_fake FAKE
cat >"$TMP/kong.yml" <<EOF
_format_version: "3.0"
services:
  - name: fake
    url: http://$FAKE
    routes:
      - {name: all, paths: ["/"], strip_path: false}
EOF
start_gateway "$TMP/kong.yml"

# run_hey NAME: sets P99_MS, HEY_OK, HEY_BAD.
run_hey() {
	local out=$TMP/hey-$1.out
	bg_run "$out" taskset -c "$LOAD_CPU" timeout 40 hey -z 20s -c 20 "http://$PROXY/ok" ||
		{ log "hey failed: $(tail -n 3 "$out")"; exit 1; }
	P99_MS=$(awk '$1 ~ /^99%/ && $2 == "in" {printf "%.2f", $3 * 1000}' "$out")
	HEY_OK=$(awk '$1 == "[200]" {print $2}' "$out")
	HEY_BAD=$(awk '/^Status code distribution:/ {s = 1; next} s && $1 ~ /^\[[0-9]+\]$/ && $1 != "[200]" {n += $2}
		/^Error distribution:/ {e = 1; next} e && $1 ~ /^\[[0-9]+\]$/ {n += substr($1, 2) + 0} END {print n + 0}' "$out")
	log "hey $1: ${HEY_OK:-0} x 200, $HEY_BAD failed, p99 $P99_MS ms"
}
run_hey baseline
base_p99=$P99_MS base_bad=$HEY_BAD base_ok=${HEY_OK:-0}

log "slowhttptest -H -c 500 -i 10 -r 100 -l 60"
taskset -c "$LOAD_CPU" timeout 120 slowhttptest -H -c 500 -i 10 -r 100 -l 60 -u "http://$PROXY/" \
	-g -o "$TMP/slow" >"$TMP/slowhttptest.out" 2>&1 &
SLOW=$!
PIDS+=("$SLOW")
sleep 5 # the 500 connections are opened at 100/s
run_hey during
wait "$SLOW" || true
forget_pid "$SLOW"

# slow.csv: Seconds,Closed,Pending,Connected,...
peak=$(awk -F, 'NR > 1 && $4 > m {m = $4} END {print m + 0}' "$TMP/slow.csv")
unavailable=$(sed 's/\x1b\[[0-9;]*m//g' "$TMP/slowhttptest.out" | grep -c 'service available: *NO' || true)
exit_status=$(sed 's/\x1b\[[0-9;]*m//g' "$TMP/slowhttptest.out" | sed -n 's/^Exit status: *//p' | tail -n 1)
# The first second with none left; slowhttptest stops writing rows once it
# has "No open connections left", so then it is the second after the last row.
all_closed=$(awk -F, -v gone="$([[ $exit_status == "No open connections left"* ]] && echo 1)" '
	NR > 1 { last = $1; if ($2 > 0 && $3 == 0 && $4 == 0) { print $1; found = 1; exit } }
	END { if (!found && gone) print last + 1 }' "$TMP/slow.csv")
log "slowhttptest: peak $peak connected, all closed at ${all_closed:-never}s ($exit_status)"
ratio=$(awk -v a="$P99_MS" -v b="$base_p99" 'BEGIN { if (b > 0) printf "%.2f", a / b }')

expect "slow connections opened (peak connected)" "$peak" ge 400
expect "all 500 slow connections closed by (s)" "${all_closed:-}" le 18
expect "slowhttptest probe saw the service unavailable" "$unavailable" eq 0
expect "hey failures (baseline)" "$base_bad" eq 0
expect "hey failures (during slowloris)" "$HEY_BAD" eq 0
expect "hey p99 during / baseline" "$ratio" le 2
note "hey p99 ${base_p99}ms -> ${P99_MS}ms (x$ratio), ok $base_ok/${HEY_OK:-0}; slowloris peak=$peak all_closed_at=${all_closed:-never}s"
finish
