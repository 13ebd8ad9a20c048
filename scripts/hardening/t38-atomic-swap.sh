#!/usr/bin/env bash
# T38 Atomic swap under load (hardening.md §3.3, load part): vegeta at 300/s
# for 60 s against /ver while the configuration flips between v1 and v2 via
# POST /config (DB-less) every 0.5 s. v1's graph calls fake A (ver 1) and
# v2's fake B (ver 2); the response carries X-Ver from the call and the
# config's own version in the body, so a request that mixed two snapshots
# shows X-Ver != body.config.
# Correct: every response self-consistent; 0 non-2xx; 0 connection errors.
# limit: 150
source "$(dirname "$0")/lib.sh"
need_tool vegeta

RATE=${RATE:-300}
DURATION=${DURATION:-60s}
MIN_FLIPS=${MIN_FLIPS:-100} # 0.5 s apart over 60 s: about 120

start_fake FAKE_A -ver 1
start_fake FAKE_B -ver 2
config() { # VERSION FAKE
	cat <<EOF
_format_version: "3.0"
services:
  - name: ver
    url: http://$2
    routes:
      - name: ver
        paths: ["/ver"]
        plugins:
          - name: datakit
            config:
              nodes:
                - {name: CALL, type: call, url: "http://$2/ver"}
                - {name: CFG, type: static, values: {body: {config: "$1"}}}
                - {name: HDR, type: jq, input: CALL.body, jq: '{"X-Ver": .ver}'}
                - {name: EXIT, type: exit, status: 200, inputs: {body: CFG.body, headers: HDR}}
EOF
}
config 1 "$FAKE_A" >"$TMP/v1.yml"
config 2 "$FAKE_B" >"$TMP/v2.yml"
start_gateway "$TMP/v1.yml"

check_once() { # VERSION: one request answers that version consistently
	local out
	out=$(curl -s -D - --max-time 5 "http://$PROXY/ver" | tr -d '\r')
	grep -qi "^x-ver: $1\$" <<<"$out" && grep -q "\"config\":\"$1\"" <<<"$out"
}
check_once 1 || { log "v1 answers wrongly: $(curl -s -i "http://$PROXY/ver")"; exit 1; }
[[ $(post_config "$TMP/v2.yml") == 201 ]] || { log "POST /config v2: $(cat "$TMP/post_config.out")"; exit 1; }
check_once 2 || { log "v2 answers wrongly: $(curl -s -i "http://$PROXY/ver")"; exit 1; }

# The flipper: alternate v1/v2 every 0.5 s until told to stop; one status per line.
flipper() {
	local v=1
	while [[ ! -e $TMP/stop ]]; do
		post_config "$TMP/v$v.yml" >>"$TMP/flips.txt"
		echo >>"$TMP/flips.txt"
		v=$((3 - v))
		sleep 0.5
	done
}
flipper &
FLIPPER=$!
PIDS+=("$FLIPPER")

echo "GET http://$PROXY/ver" >"$TMP/targets"
log "vegeta $RATE/s for $DURATION while flipping"
bg_run "$TMP/vegeta.log" taskset -c "$LOAD_CPU" timeout 90 vegeta attack -targets "$TMP/targets" \
	-rate "$RATE/s" -duration "$DURATION" -timeout 5s -output "$TMP/t38.bin" || true
touch "$TMP/stop"
wait "$FLIPPER" || true
forget_pid "$FLIPPER"

flips=$(grep -c . "$TMP/flips.txt" || true)
flips_bad=$(grep -vc '^201$' "$TMP/flips.txt" || true)

# One line per response: code, error, X-Ver, body.config.
vegeta encode --to json "$TMP/t38.bin" | jq -r '[.code, (.error | if . == "" then "-" else gsub("\\s"; "_") end),
	(.headers["X-Ver"][0] // "-"), ((.body | @base64d | fromjson? | .config) // "-")] | @tsv' >"$TMP/results.tsv"
read -r total non2xx errors inconsistent v1 v2 < <(awk -F'\t' '
	{ n++; if ($1 < 200 || $1 > 299) bad++; if ($2 != "-") err++
	  if ($1 == 200) { if ($3 != $4) inc++; if ($3 == 1) a++; if ($3 == 2) b++ } }
	END { print n + 0, bad + 0, err + 0, inc + 0, a + 0, b + 0 }' "$TMP/results.tsv")
if [[ $errors -gt 0 ]]; then log "errors: $(awk -F'\t' '$2 != "-" {print $2}' "$TMP/results.tsv" | sort | uniq -c | head -5)"; fi
vegeta_json "$TMP/t38.bin" >"$TMP/report.json"
p99=$(ms "$(jq '.latencies["99th"]' "$TMP/report.json")")

expect "config flips" "$flips" ge "$MIN_FLIPS"
expect "flips not answered 201" "$flips_bad" eq 0
expect "responses" "$total" ge 1
expect "non-2xx responses" "$non2xx" eq 0
expect "connection errors" "$errors" eq 0
expect "inconsistent responses (X-Ver != config)" "$inconsistent" eq 0
expect "responses from v1" "$v1" gt 0
expect "responses from v2" "$v2" gt 0
note "requests=$total flips=$flips non2xx=$non2xx errors=$errors inconsistent=$inconsistent v1=$v1 v2=$v2 p99=${p99}ms"
finish
