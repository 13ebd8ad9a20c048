#!/usr/bin/env bash
# T48 Soak with injected faults (hardening.md §3.5). toxiproxy sits on the
# call path (a datakit `call` node → fake C) and on the upstream path
# (proxying → fake U), both with latency 5 ms ± 5 ms, bandwidth 1 MB/s and a
# slicer on the answers and a 1 % reset_peer on the requests (the toxicity is
# drawn per connection). vegeta sends 200/s for SOAK (5m; SOAK=30m for the
# long run); RSS, goroutines (go_goroutines on the status listener's /metrics)
# and open fds are sampled every 10 s.
# Correct: after a warm-up (the first fifth, at most 60 s), the least-squares
# slope of each series is below 5 % growth per 10 min (of the series' mean);
# errors no more than the faults injected (2 × 1 % of the connections
# toxiproxy saw, + 5 for chance); p99 of the last minute ≤ 2× that of the
# minute after the warm-up (windows of a fifth of SOAK when it is < 5 min).
# limit: SOAK+240
source "$(dirname "$0")/lib.sh"
need_tool vegeta
export TZ=UTC

SOAK_SECONDS=${SOAK_SECONDS:-300}
RATE=${RATE:-200}
INTERVAL=10
RESET_TOXICITY=0.01
# A fixed pool of client connections: without it vegeta opens connections at
# every latency spike and lets them idle out, and the gateway's goroutines
# and fds follow that client churn rather than the gateway's own state.
CLIENT_CONNS=${CLIENT_CONNS:-32}

start_fake UPSTREAM
start_fake CALLEE
start_toxiproxy
toxi_proxy TOXI_UP upstream "$UPSTREAM"
toxi_proxy TOXI_CALL call "$CALLEE"
for p in upstream call; do
	toxi toxic add -n latency -t latency -a latency=5 -a jitter=5 -d "$p"
	toxi toxic add -n bandwidth -t bandwidth -a rate=1024 -d "$p"
	toxi toxic add -n slicer -t slicer -a average_size=64 -a size_variation=32 -a delay=100 -d "$p"
	toxi toxic add -n reset -t reset_peer -a timeout=0 --tox "$RESET_TOXICITY" -u "$p"
done
toxics=$(curl -s "http://$TOXI/proxies" | jq '[.[].toxics | length] | add')
[[ $toxics == 8 ]] || { log "toxiproxy has $toxics toxics, want 8: $(cat "$TMP/toxiproxy-cli.log")"; exit 1; }

cat >"$TMP/kong.yml" <<EOF
_format_version: "3.0"
services:
  - name: soak
    url: http://$TOXI_UP
    routes:
      - name: soak
        paths: ["/ok"]
        strip_path: false
        plugins:
          - name: datakit
            config:
              nodes:
                - {name: CALL, type: call, url: "http://$TOXI_CALL/ok"}
                - name: HEADER
                  type: jq
                  input: CALL.body
                  output: service_request.headers
                  jq: '{"X-Call-Ok": (.ok | tostring)}'
EOF
start_gateway "$TMP/kong.yml"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$PROXY/ok" || true)
[[ $code == 200 ]] || log "first request: $code (a reset is possible; the soak counts errors)"

# Every INTERVAL s one sample "elapsed rss_kib goroutines fds": the median of
# five reads 2 s apart, so that the requests in flight at one instant (a few
# goroutines each) do not pass for growth.
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
sampler() {
	local t0=$SECONDS t i r g f
	while :; do
		t=$((SECONDS - t0))
		r=() g=() f=()
		for i in 1 2 3 4 5; do
			r+=("$(rss_kib "$GW_PID")") g+=("$(metric go_goroutines)") f+=("$(fd_count "$GW_PID")")
			[[ $i == 5 ]] || sleep $((INTERVAL / 5))
		done
		echo "$t $(printf '%s\n' "${r[@]}" | median) $(printf '%s\n' "${g[@]}" | median) $(printf '%s\n' "${f[@]}" | median)" >>"$TMP/samples.txt"
		sleep $((INTERVAL - 4 * (INTERVAL / 5)))
	done
}

echo "GET http://$PROXY/ok" >"$TMP/targets"
log "vegeta $RATE/s for ${SOAK_SECONDS}s through toxiproxy; sampling every ${INTERVAL}s"
sampler &
SAMPLER=$!
PIDS+=("$SAMPLER")
bg_run "$TMP/vegeta.log" taskset -c "$LOAD_CPU" timeout $((SOAK_SECONDS + 60)) vegeta attack -targets "$TMP/targets" \
	-rate "$RATE/s" -duration "${SOAK_SECONDS}s" -timeout 10s -max-connections "$CLIENT_CONNS" -output "$TMP/t48.bin" || true
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
forget_pid "$SAMPLER"
sed 's/^/  sample /' "$TMP/samples.txt" >&2

# Slopes after the warm-up: growth per 10 min as a percentage of the mean.
warmup=$((SOAK_SECONDS / 5 < 60 ? SOAK_SECONDS / 5 : 60))
fit() { # COLUMN -> "start end slope_pct_per_10min"
	awk -v c="$1" -v w="$warmup" '
		NR == 1 { first = $c } { last = $c }
		$1 >= w && $c != "" { n++; x = $1; y = $c; sx += x; sy += y; sxx += x * x; sxy += x * y }
		END {
			if (n < 3) { print first, last, ""; exit }
			slope = (n * sxy - sx * sy) / (n * sxx - sx * sx); mean = sy / n
			printf "%s %s %.2f\n", first, last, slope * 600 / mean * 100 }' "$TMP/samples.txt"
}
read -r rss0 rss1 rss_slope < <(fit 2)
read -r gor0 gor1 gor_slope < <(fit 3)
read -r fd0 fd1 fd_slope < <(fit 4)
samples=$(wc -l <"$TMP/samples.txt")

# Errors against the faults toxiproxy could have injected.
vegeta encode --to json "$TMP/t48.bin" | jq -r '
	[((.timestamp[0:19] + "Z" | fromdate) + ((.timestamp | capture("(?<f>\\.[0-9]+)").f // ".0") | tonumber)),
	 .code, .latency, (if .error == "" then "-" else (.error | gsub("\\s"; "_")) end)] | @tsv' >"$TMP/results.tsv"
read -r total errors < <(awk -F'\t' '{ n++; if ($2 != 200) e++ } END { print n + 0, e + 0 }' "$TMP/results.tsv")
if [[ $errors -gt 0 ]]; then
	log "errors by kind: $(awk -F'\t' '$2 != 200 {print $2, substr($4, 1, 80)}' "$TMP/results.tsv" | sort | uniq -c | sort -rn | head -5 | paste -sd';')"
fi
conns=$(($(fake_stat "$UPSTREAM" conns_total) + $(fake_stat "$CALLEE" conns_total)))
injected=$(awk -v c="$conns" -v t="$RESET_TOXICITY" 'BEGIN { printf "%.1f", c * t }')
allowed=$(awk -v i="$injected" 'BEGIN { printf "%.0f", 2 * i + 5 }')
err_pct=$(awk -v e="$errors" -v n="$total" 'BEGIN { if (n) printf "%.3f", e / n * 100 }')

# p99 of the first and the last minute (of 200s only).
p99_window() { # FROM TO (seconds since the first request)
	awk -F'\t' -v a="$1" -v b="$2" 'NR == 1 { t0 = $1 } $2 == 200 && $1 - t0 >= a && $1 - t0 < b { print $3 }' "$TMP/results.tsv" |
		sort -n | awk '{ v[NR] = $1 } END { if (NR) { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", v[i] / 1e6 } }'
}
window=$((SOAK_SECONDS < 300 ? SOAK_SECONDS / 5 : 60))
p99_first=$(p99_window "$warmup" $((warmup + window)))
p99_last=$(p99_window $((SOAK_SECONDS - window)) "$SOAK_SECONDS")
ratio=$(awk -v a="$p99_last" -v b="$p99_first" 'BEGIN { if (b > 0) printf "%.2f", a / b }')

expect "samples taken" "$samples" ge 3
expect "RSS growth per 10 min (%)" "$rss_slope" le 5
expect "goroutine growth per 10 min (%)" "$gor_slope" le 5
expect "open fd growth per 10 min (%)" "$fd_slope" le 5
expect "requests sent" "$total" ge $((RATE * SOAK_SECONDS * 9 / 10))
expect "errors (injected faults: $injected = 1% of $conns connections)" "$errors" le "$allowed"
expect "p99 last ${window}s / ${window}s after warm-up" "$ratio" le 2
note "soak=${SOAK_SECONDS}s requests=$total errors=$errors (${err_pct}%, faults~$injected of $conns conns)" \
	"rss_kib=$rss0->$rss1 (${rss_slope}%/10min) goroutines=$gor0->$gor1 (${gor_slope}%/10min) fds=$fd0->$fd1 (${fd_slope}%/10min)" \
	"p99=${p99_first}->${p99_last}ms"
finish
