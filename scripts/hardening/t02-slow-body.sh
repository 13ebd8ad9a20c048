#!/usr/bin/env bash
# T02 Slow or absent body, slow read (hardening.md §3.1, load part; Traefik
# CVE-2024-28869). The gateway runs with a 1 s pause limit
# (client_body_timeout, client_send_timeout) and client_body_max_duration 3 s.
#  - GET /echo with Content-Length: 10 and no body: answered or closed at the
#    pause limit (≤ 3 s with a 2 s margin);
#  - POST /echo at 10 B/s (no pause over 1 s, 10 s in all): answered or closed
#    at the body duration (≤ 5 s with a 2 s margin);
#  - slowhttptest -B (slow body) to /echo and -X (slow read) of /big
#    (8 MiB): every connection closed at the limit hit first — all 200, opened
#    within 4 s, closed by 10 s;
#  - afterwards nothing held: the fake and the gateway have 0 requests in flight.
# limit: 240
source "$(dirname "$0")/lib.sh"
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
start_gateway "$TMP/kong.yml" --set client_body_timeout=1s --set client_send_timeout=1s --set client_body_max_duration=3s
host=${PROXY%:*} port=${PROXY##*:}

# raw_request SECONDS HEAD TRICKLE: send HEAD, then TRICKLE bytes one every
# 0.1 s; print "<seconds until the status line or close> <status line|closed>".
raw_request() {
	local limit=$1 head=$2 trickle=$3 t0 t1 first
	t0=$(date +%s.%N)
	first=$(
		exec 3<>"/dev/tcp/$host/$port"
		printf '%b' "$head" >&3
		(for _ in $(seq 1 "$trickle"); do printf x >&3 2>/dev/null || exit 0; sleep 0.1; done) >/dev/null &
		line=$(timeout "$limit" head -n 1 <&3) || line="no-answer-in-${limit}s"
		kill $! 2>/dev/null || true
		printf '%s' "${line:-closed}" | tr -d '\r'
	) || true
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" -v s="${first:-closed}" 'BEGIN { printf "%.2f %s\n", b - a, s }'
}
read -r absent_s absent_status < <(raw_request 15 "GET /echo HTTP/1.1\r\nHost: t02\r\nContent-Length: 10\r\n\r\n" 0)
log "absent body: $absent_s s, ${absent_status}"
read -r trickle_s trickle_status < <(raw_request 15 "POST /echo HTTP/1.1\r\nHost: t02\r\nContent-Length: 100\r\n\r\n" 100)
log "10 B/s body: $trickle_s s, ${trickle_status}"

# slow NAME ARGS...: one slowhttptest run; sets PEAK and CLOSED_AT.
slow() {
	local name=$1 status
	shift
	bg_run "$TMP/$name.out" taskset -c "$LOAD_CPU" timeout 120 slowhttptest "$@" -g -o "$TMP/$name" || true
	status=$(sed 's/\x1b\[[0-9;]*m//g' "$TMP/$name.out" | sed -n 's/^Exit status: *//p' | tail -n 1)
	PEAK=$(awk -F, 'NR > 1 && $4 > m {m = $4} END {print m + 0}' "$TMP/$name.csv")
	# slowhttptest stops writing rows once "No open connections left".
	CLOSED_AT=$(awk -F, -v gone="$([[ $status == "No open connections left"* ]] && echo 1)" '
		NR > 1 { last = $1; if ($2 > 0 && $3 == 0 && $4 == 0) { print $1; found = 1; exit } }
		END { if (!found && gone) print last + 1 }' "$TMP/$name.csv")
	log "$name: peak $PEAK connected, all closed at ${CLOSED_AT:-never}s ($status)"
}
slow body -B -c 200 -i 10 -r 50 -s 8192 -l 60 -u "http://$PROXY/echo"
body_peak=$PEAK body_closed=${CLOSED_AT:-}
slow read -X -c 200 -r 50 -w 1 -y 1 -n 5 -z 1 -k 3 -l 60 -u "http://$PROXY/big"
read_peak=$PEAK read_closed=${CLOSED_AT:-}

# Upstream requests released: nothing in flight a few seconds later.
for _ in $(seq 1 50); do
	[[ $(fake_stat "$FAKE" inflight) == 0 && $(inflight) == 0 ]] && break
	sleep 0.1
done
fake_inflight=$(fake_stat "$FAKE" inflight)
gw_inflight=$(inflight)

expect "absent body: answered or closed after (s)" "$absent_s" le 3
expect "10 B/s body: answered or closed after (s)" "$trickle_s" le 5
expect "slow body: connections opened (peak)" "$body_peak" ge 1
expect "slow body: all closed by (s)" "$body_closed" le 10
expect "slow read: connections opened (peak)" "$read_peak" ge 1
expect "slow read: all closed by (s)" "$read_closed" le 10
expect "fake requests in flight afterwards" "$fake_inflight" eq 0
expect "gateway requests in flight afterwards" "$gw_inflight" eq 0
note "absent_body=${absent_s}s(${absent_status// /_}) trickle=${trickle_s}s(${trickle_status// /_}) slow_body: peak=$body_peak closed_at=${body_closed:-never}s slow_read: peak=$read_peak closed_at=${read_closed:-never}s inflight: fake=$fake_inflight gateway=$gw_inflight"
finish
