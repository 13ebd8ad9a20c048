#!/usr/bin/env bash
# T46 Reload without dropping connections (hardening.md §3.4, load part):
# `wrk -t2 -c100 -d60s --latency /ok` once without reloads (baseline) and once
# while the configuration reloads 60 times, alternately POST /config (DB-less)
# and SIGHUP (re-reads the declarative file).
# Correct: 0 socket errors (connect, read, write, timeout); 0 non-2xx; p99 ≤ 2×
# the run without reloads; every reload applied; the same process throughout.
# limit: 240
source "$(dirname "$0")/lib.sh"
need_apt wrk wrk

DURATION=${DURATION:-60}
RELOADS=${RELOADS:-60}

start_fake FAKE
config() { # NAME
	cat <<EOF
_format_version: "3.0"
services:
  - name: fake-$1
    url: http://$FAKE
    routes:
      - {name: ok-$1, paths: ["/ok"], strip_path: false}
EOF
}
config file >"$TMP/kong.yml"
config posted >"$TMP/posted.yml"
start_gateway "$TMP/kong.yml"
pid0=$GW_PID

# run_wrk NAME: wrk on the load core; sets P99_US, REQS, NON2XX, SOCKERR.
to_us() { # 1.23ms -> 1230
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /s$/) m = 1e6; else m = 1
		sub(/[a-z]+$/, "", v); printf "%.0f", v * m }'
}
run_wrk() {
	local out=$TMP/wrk-$1.out
	bg_run "$out" taskset -c "$LOAD_CPU" timeout $((DURATION + 30)) wrk -t2 -c100 -d"${DURATION}s" --latency "http://$PROXY/ok" ||
		{ log "wrk failed: $(tail -n 3 "$out")"; exit 1; }
	P99_US=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
	REQS=$(awk '/requests in/ {print $1}' "$out")
	NON2XX=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} END {print n + 0}' "$out")
	SOCKERR=$(awk '/Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$out")
	log "$1: $REQS requests, p99 ${P99_US} us, non-2xx $NON2XX, socket errors $SOCKERR"
}

log "baseline: wrk -t2 -c100 -d${DURATION}s without reloads"
run_wrk baseline
base_p99=$P99_US base_reqs=$REQS base_non2xx=$NON2XX base_sockerr=$SOCKERR

# The reloader: RELOADS reloads spread over the run, POST /config and SIGHUP
# in turn; POST statuses one per line.
reloader() {
	local i gap
	gap=$(awk -v d="$DURATION" -v n="$RELOADS" 'BEGIN { printf "%.3f", (d - 2) / n }')
	sleep 1
	for i in $(seq 1 "$RELOADS"); do
		if ((i % 2)); then
			post_config "$TMP/posted.yml" >>"$TMP/posts.txt"
			echo >>"$TMP/posts.txt"
		else
			kill -HUP "$GW_PID"
			echo hup >>"$TMP/hups.txt"
		fi
		sleep "$gap"
	done
}
log "with $RELOADS reloads: wrk -t2 -c100 -d${DURATION}s"
reloader &
RELOADER=$!
PIDS+=("$RELOADER")
run_wrk reload
wait "$RELOADER" || true
forget_pid "$RELOADER"

posts=$(grep -c . "$TMP/posts.txt" || true)
posts_bad=$(grep -vc '^201$' "$TMP/posts.txt" || true)
hups=$(grep -c . "$TMP/hups.txt" || true)
reloaded=$(grep -c 'msg="configuration reloaded"' "$GW_LOG" || true)
ratio=$(awk -v a="$P99_US" -v b="$base_p99" 'BEGIN { if (b > 0) printf "%.2f", a / b }')

expect "baseline socket errors" "$base_sockerr" eq 0
expect "baseline non-2xx" "$base_non2xx" eq 0
expect "reloads done (POST /config + SIGHUP)" "$((posts + hups))" eq "$RELOADS"
expect "POST /config not answered 201" "$posts_bad" eq 0
expect "SIGHUP reloads logged" "$reloaded" eq "$hups"
expect "socket errors during reloads" "$SOCKERR" eq 0
expect "non-2xx during reloads" "$NON2XX" eq 0
expect "p99 with reloads / without" "$ratio" le 2
expect "same gateway process (never restarted)" "$(kill -0 "$pid0" 2>/dev/null && echo 1 || echo 0)" eq 1
note "baseline: reqs=$base_reqs p99=${base_p99}us; reloads=$((posts + hups)) (post=$posts hup=$hups): reqs=$REQS p99=${P99_US}us ratio=$ratio non2xx=$NON2XX sockerr=$SOCKERR"
finish
