#!/usr/bin/env bash
# T44 Graceful shutdown drains (hardening.md §3.4, load part).
# 1. drain_delay 2 s; the fake takes 2 s per request; vegeta at 100/s for 20 s
#    against /slow, SIGTERM at 10 s. Correct: /status/ready 503 at once; new
#    connections refused only after drain_delay; every accepted request 200,
#    no EOF or reset; exit 0.
# 2. drain_timeout 3 s with requests that take 10 s: the gateway logs the drain
#    timeout and the number aborted, and exits 0 within the deadline.
# limit: 120
source "$(dirname "$0")/lib.sh"
need_tool vegeta
export TZ=UTC # vegeta's timestamps are read as UTC below

start_fake FAKE
cat >"$TMP/kong.yml" <<EOF
_format_version: "3.0"
services:
  - name: fake
    url: http://$FAKE
    routes:
      - {name: all, paths: ["/"]}
EOF

# --- 1. drain under load ---
start_gateway "$TMP/kong.yml" --set drain_delay=2s
echo "GET http://$PROXY/slow" >"$TMP/targets"
log "vegeta 100/s for 20s against /slow (2 s each); SIGTERM at 10 s"
taskset -c "$LOAD_CPU" timeout 60 vegeta attack -targets "$TMP/targets" -rate 100/s -duration 20s \
	-timeout 10s -output "$TMP/t44.bin" >"$TMP/vegeta.log" 2>&1 &
VEGETA=$!
PIDS+=("$VEGETA")
sleep 10
t_term=$(date +%s.%N)
kill -TERM "$GW_PID"
ready=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$STATUS/status/ready" || true)
t_ready=$(date +%s.%N)
# When does the proxy port stop accepting connections?
port=${PROXY##*:}
t_refused=""
for _ in $(seq 1 100); do
	if ! port_busy "$port"; then
		t_refused=$(date +%s.%N)
		break
	fi
	sleep 0.05
done
GW_EXIT=0
wait "$GW_PID" || GW_EXIT=$?
t_exit=$(date +%s.%N)
forget_pid "$GW_PID"
wait "$VEGETA" || true
forget_pid "$VEGETA"

since() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "") print ""; else printf "%.2f", b - a }'; }
ready_after=$(since "$t_term" "$t_ready")
refused_after=$(since "$t_term" "$t_refused")
exit_after=$(since "$t_term" "$t_exit")

# Per request: seconds after SIGTERM it started, code, error.
vegeta encode --to json "$TMP/t44.bin" | jq -r --argjson t0 "$t_term" '
	((.timestamp[0:19] + "Z" | fromdate) + ((.timestamp | capture("(?<f>\\.[0-9]+)").f // ".0") | tonumber) - $t0) as $t
	| [($t * 1000 | round / 1000), .code, (if .error == "" then "-" else (.error | gsub("\\s"; "_")) end)] | @tsv' >"$TMP/results.tsv"
# Refused connections are fine from drain_delay on (0.25 s of clock slack);
# anything else but 200 is a dropped request.
read -r total ok refused early_refused dropped < <(awk -F'\t' '
	{ n++
	  if ($2 == 200) ok++
	  else if ($3 ~ /connection_refused/) { if ($1 >= 1.75) ref++; else early++ }
	  else bad++ }
	END { print n + 0, ok + 0, ref + 0, early + 0, bad + 0 }' "$TMP/results.tsv")
if [[ $dropped -gt 0 ]]; then
	log "dropped: $(awk -F'\t' '$2 != 200 && $3 !~ /connection_refused/ {print $2, $3}' "$TMP/results.tsv" | sort | uniq -c | head -5)"
fi

expect "/status/ready right after SIGTERM" "$ready" eq 503
expect "  answered within (s)" "$ready_after" le 1
expect "proxy port refuses connections after (s)" "$refused_after" ge 1.75
expect "  and by (s, drain_delay 2 s + 1.5 s margin)" "$refused_after" le 3.5
expect "accepted requests answered 200" "$ok" ge 1
expect "requests dropped (non-200, EOF, reset, timeout)" "$dropped" eq 0
expect "connections refused before drain_delay" "$early_refused" eq 0
expect "exit status" "$GW_EXIT" eq 0
note "requests=$total ok=$ok refused_after_close=$refused dropped=$dropped ready=${ready}@${ready_after}s closed@${refused_after}s exit=$GW_EXIT@${exit_after}s"

# --- 2. drain_timeout reached ---
start_gateway "$TMP/kong.yml" --set drain_timeout=3s
for _ in $(seq 1 20); do
	curl -s -o /dev/null --max-time 20 "http://$PROXY/slow?ms=10000" &
	PIDS+=($!)
done
# Wait until the gateway has all 20 in flight.
for _ in $(seq 1 50); do
	[[ $(inflight) -ge 20 ]] && break
	sleep 0.1
done
held=$(inflight)
t_term=$(date +%s.%N)
kill -TERM "$GW_PID"
GW_EXIT=0
wait "$GW_PID" || GW_EXIT=$?
forget_pid "$GW_PID"
exit_after=$(since "$t_term" "$(date +%s.%N)")
aborted_line=$(grep -m1 'drain timeout' "$GW_LOG" || true)
log "gateway logged: ${aborted_line:-nothing about the drain timeout}"
aborted=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$aborted_line")
expect "requests in flight at SIGTERM" "$held" eq 20
expect "drain_timeout 3s: exit after (s, 1.5 s margin)" "$exit_after" le 4.5
expect "  exit status" "$GW_EXIT" eq 0
expect "  aborted requests logged" "${aborted:-}" eq 20
note "drain_timeout: inflight=$held aborted_logged=${aborted:-none} exit=$GW_EXIT@${exit_after}s"
finish
