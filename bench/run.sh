#!/usr/bin/env bash
# Load harness: the whole gateway against the upstream hit directly and
# against nginx as a plain keep-alive reverse proxy, on one machine, reported
# as ratios (design.md §6). See bench/README.md.
#
# Layout (2 cores): the proxy under test (datakit with GOMAXPROCS=1, or one
# nginx worker) alone on CPU $GW_CPU; the upstream and wrk share CPU $LOAD_CPU.
#
# Environment (all optional):
#   DURATION=10s WARMUP=3s CONNS=50   the wrk runs (-t1 -c$CONNS --latency)
#   GW_CPU=0 LOAD_CPU=1               the two cores
#   DATAKIT_BIN=path                  use this binary instead of building bin/datakit
#   WORKLOADS="direct nginx plain jq token fanout"   a subset, in this order
#   PORT_BASE=38100                   first loopback port tried
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONNS=${CONNS:-50}
GW_CPU=${GW_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
WORKLOADS=${WORKLOADS:-direct nginx plain jq token fanout}
PORT_BASE=${PORT_BASE:-38100}
RESULTS_DIR="$ROOT/bench/results"
GO=${GO:-go}

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- cleanup: every process we start is in PIDS; the trap ends them all. ---
TMP=$(mktemp -d /tmp/datakit-bench.XXXXXX)
PIDS=()
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
# forget_pid PID: it has been waited for, so its number may be reused by an
# unrelated process and must not be signalled again.
forget_pid() {
	local keep=() p
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	PIDS=("${keep[@]+"${keep[@]}"}")
}
cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in "${PIDS[@]+"${PIDS[@]}"}"; do stop_pid "$pid"; done
	if [[ $rc -ne 0 && -d $TMP ]]; then
		for f in "$TMP"/*.log; do
			[[ -s $f ]] || continue
			log "--- tail of $(basename "$f")"
			tail -n 20 "$f" >&2 || true
		done
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- prerequisites ---
[[ $(nproc --all) -ge 2 ]] || die "needs 2 cores, have $(nproc --all)"
command -v taskset >/dev/null || die "taskset (util-linux) is required"
command -v curl >/dev/null || die "curl is required"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
if [[ ${#missing[@]} -gt 0 ]]; then
	log "installing ${missing[*]} with apt-get"
	SUDO=()
	[[ $EUID -eq 0 ]] || SUDO=(sudo)
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# policy-rc.d in containers usually stops the nginx service from starting;
	# we never use it either way (nginx runs below with its own prefix).
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
CLK_TCK=$(getconf CLK_TCK)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# --- build ---
if [[ -n ${DATAKIT_BIN:-} ]]; then
	DK=$DATAKIT_BIN
	[[ -x $DK ]] || die "DATAKIT_BIN=$DK is not executable"
	log "using $DK"
else
	log "building bin/datakit"
	(cd "$ROOT" && $GO build -o bin/datakit ./cmd/datakit)
	DK=$ROOT/bin/datakit
fi
log "building bench/upstream"
(cd "$ROOT" && $GO build -o "$TMP/upstream" ./bench/upstream)

# --- ports: fixed high loopback ports, skipping any that answer ---
NEXT_PORT=$PORT_BASE
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # VAR: set VAR to the next port nothing listens on
	while port_busy "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
	printf -v "$1" '%s' "$NEXT_PORT"
	NEXT_PORT=$((NEXT_PORT + 1))
}
free_port UP_PORT
free_port NGX_PORT
free_port GW_PORT
free_port ST_PORT
free_port AD_PORT
UP=http://127.0.0.1:$UP_PORT

wait_http() { # URL seconds: until URL answers 200
	local url=$1 deadline=$((SECONDS + $2))
	until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true) == 200 ]]; do
		[[ $SECONDS -lt $deadline ]] || return 1
		sleep 0.1
	done
}

# CPU ticks (utime+stime) of a process and its direct children (nginx workers).
cpu_ticks() {
	local pid=$1 total=0 f rest ppid
	for f in /proc/[0-9]*/stat; do
		rest=$(cat "$f" 2>/dev/null) || continue
		rest=${rest##*) }
		# shellcheck disable=SC2086
		set -- $rest
		# $1 state, $2 ppid, ..., $12 utime, $13 stime (fields 14 and 15)
		ppid=$2
		if [[ ${f#/proc/} == "$pid/stat" || $ppid == "$pid" ]]; then
			total=$((total + ${12} + ${13}))
		fi
	done
	echo "$total"
}

# --- the upstream, on the load core ---
taskset -c "$LOAD_CPU" env GOMAXPROCS=1 "$TMP/upstream" -listen "127.0.0.1:$UP_PORT" >"$TMP/upstream.log" 2>&1 &
PIDS+=($!)
wait_http "$UP/" 10 || die "upstream did not start"

# --- declarative configurations, one per workload ---
service_head() {
	cat <<EOF
_format_version: "3.0"
services:
  - name: upstream
    url: $UP
    routes:
      - name: bench
        paths: ["/"]
EOF
}
write_configs() {
	service_head >"$TMP/plain.yml"

	{
		service_head
		cat <<'EOF'
        plugins:
          - name: datakit
            config:
              nodes:
                - name: HOST_HEADER
                  type: jq
                  input: request.headers
                  output: service_request.headers
                  jq: '{"X-Bench-Host": (.Host // "none")}'
EOF
	} >"$TMP/jq.yml"

	# graphs/token-exchange.yaml with the token service on the upstream.
	{
		service_head
		cat <<EOF
        plugins:
          - name: datakit
            config:
              nodes:
                - name: STATIC_INPUTS
                  type: static
                  values:
                    headers: {Content-Type: application/x-www-form-urlencoded}
                    body: {grant_type: client_credentials, client_id: my_client_id}
                - name: BUILD_HEADERS
                  type: jq
                  inputs: {headers: STATIC_INPUTS.headers, query: request.query}
                  jq: '.headers * {"X-Api-Key": (.query.api_key // "none")}'
                - name: AUTH_REQUEST
                  type: call
                  method: POST
                  url: $UP/auth-token
                  inputs: {headers: BUILD_HEADERS, body: STATIC_INPUTS.body}
                - name: UPSTREAM_AUTH_HEADER
                  type: jq
                  input: AUTH_REQUEST.body
                  output: service_request.headers
                  jq: '{Authorization: (.token_type + " " + .access_token)}'
EOF
	} >"$TMP/token.yml"

	# Three parallel calls merged by jq and returned by exit (like
	# graphs/combine-apis.yaml).
	{
		service_head
		cat <<EOF
        plugins:
          - name: datakit
            config:
              nodes:
                - {name: A, type: call, url: $UP/a}
                - {name: B, type: call, url: $UP/b}
                - {name: C, type: call, url: $UP/c}
                - name: MERGE
                  type: jq
                  inputs: {a: A.body, b: B.body, c: C.body}
                  jq: '{a: .a.value, b: .b.value, c: .c.value}'
                - {name: EXIT, type: exit, status: 200, inputs: {body: MERGE}}
EOF
	} >"$TMP/fanout.yml"
}
write_configs

write_nginx_conf() {
	mkdir -p "$TMP/nginx/logs"
	local user=""
	# As root the master would hand the worker to "nobody": keep the current user.
	[[ $EUID -ne 0 ]] || user="user $(id -un) $(id -gn);"
	cat >"$TMP/nginx/nginx.conf" <<EOF
$user
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 1000000;
    upstream bench_upstream {
        server 127.0.0.1:$UP_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGX_PORT;
        location / {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
}

# --- starting and stopping the proxy under test ---
PROXY_PID=""
start_datakit() { # CONFIG
	taskset -c "$GW_CPU" env GOMAXPROCS=1 "$DK" serve --database off \
		--declarative-config "$1" \
		--proxy-listen "127.0.0.1:$GW_PORT" --status-listen "127.0.0.1:$ST_PORT" \
		--admin-listen "127.0.0.1:$AD_PORT" \
		--set log_level=warn --set access_log=off >>"$TMP/datakit.log" 2>&1 &
	PROXY_PID=$!
	PIDS+=("$PROXY_PID")
	wait_http "http://127.0.0.1:$ST_PORT/status/ready" 15 || die "datakit did not become ready with $1"
}
start_nginx() {
	write_nginx_conf
	taskset -c "$GW_CPU" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" \
		>>"$TMP/nginx.log" 2>&1 &
	PROXY_PID=$!
	PIDS+=("$PROXY_PID")
	wait_http "http://127.0.0.1:$NGX_PORT/" 10 || die "nginx did not start (see its error log)"
}
stop_proxy() {
	[[ -n $PROXY_PID ]] || return 0
	stop_pid "$PROXY_PID"
	forget_pid "$PROXY_PID"
	PROXY_PID=""
}

# --- one check per workload that the answer is the intended one ---
expect() { # NAME URL PATTERN
	local body
	body=$(curl -s -H 'Host: bench.test' --max-time 5 -w '\n%{http_code}' "$2") || die "$1: request failed"
	[[ ${body##*$'\n'} == 200 ]] || die "$1: status ${body##*$'\n'}: ${body%$'\n'*}"
	grep -q -- "$3" <<<"$body" || die "$1: answer lacks $3: $body"
}

# --- wrk ---
to_us() { # 1.23ms -> 1230
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /m$/) m = 60e6; else if (v ~ /s$/) m = 1e6; else m = 1
		sub(/[a-z]+$/, "", v); printf "%.1f", v * m }'
}

# wrk in the background: a signal to this script is handled at once (the
# trap stops wrk too) instead of after a foreground wrk returns.
run_wrk() { # OUTFILE WRK-ARGS...
	local outfile=$1 p
	shift
	taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" "$@" >"$outfile" 2>&1 &
	p=$!
	PIDS+=("$p")
	if ! wait "$p"; then
		forget_pid "$p"
		die "wrk failed: $(tail -n 3 "$outfile")"
	fi
	forget_pid "$p"
}

# Results, indexed by workload.
declare -A RPS P50 P99 CPU ERRS REQS
run_load() { # NAME URL PID(or empty)
	local name=$1 url=$2 pid=${3:-} out c0 c1 reqs
	log "$name: warm-up $WARMUP"
	run_wrk "$TMP/warmup-$name.out" -d"$WARMUP" "$url"
	[[ -z $pid ]] || c0=$(cpu_ticks "$pid")
	log "$name: measuring $DURATION at $CONNS connections"
	run_wrk "$TMP/wrk-$name.log" -d"$DURATION" --latency "$url"
	[[ -z $pid ]] || c1=$(cpu_ticks "$pid")
	out=$(<"$TMP/wrk-$name.log")
	RPS[$name]=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	P50[$name]=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
	P99[$name]=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	REQS[$name]=$reqs
	ERRS[$name]=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
	if [[ -n $pid ]]; then
		CPU[$name]=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }')
	else
		CPU[$name]="-"
	fi
	log "$name: ${RPS[$name]} req/s, p50 ${P50[$name]} us, p99 ${P99[$name]} us, cpu ${CPU[$name]} us/req, errors ${ERRS[$name]}"
}

declare -A TITLE=(
	[direct]="upstream direct"
	[nginx]="nginx plain proxy"
	[plain]="datakit plain proxy"
	[jq]="datakit + 1 jq node"
	[token]="datakit token exchange"
	[fanout]="datakit 3-way fan-out"
)
RAN=()
for w in $WORKLOADS; do
	case $w in
	direct)
		run_load direct "$UP/" ""
		;;
	nginx)
		start_nginx
		expect nginx "http://127.0.0.1:$NGX_PORT/" '"service":"upstream"'
		run_load nginx "http://127.0.0.1:$NGX_PORT/" "$PROXY_PID"
		stop_proxy
		;;
	plain | jq | token | fanout)
		start_datakit "$TMP/$w.yml"
		case $w in
		plain) expect plain "http://127.0.0.1:$GW_PORT/" '"service":"upstream"' ;;
		jq) expect jq "http://127.0.0.1:$GW_PORT/headers" '"X-Bench-Host":"bench.test"' ;;
		token) expect token "http://127.0.0.1:$GW_PORT/headers" '"Authorization":"Bearer abc"' ;;
		fanout) expect fanout "http://127.0.0.1:$GW_PORT/" '"a":1,"b":2,"c":3' ;;
		esac
		run_load "$w" "http://127.0.0.1:$GW_PORT/" "$PROXY_PID"
		stop_proxy
		;;
	*) die "unknown workload $w" ;;
	esac
	RAN+=("$w")
done

# --- report ---
ratio() { # A B -> A/B with 2 decimals, "-" when either is missing
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}
has() { [[ -n ${RPS[$1]:-} ]]; }
report() {
	local commit dirty=""
	commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	[[ -z $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]] || dirty=" (working tree modified)"
	echo "datakit load harness — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	if [[ -n ${DATAKIT_BIN:-} ]]; then
		echo "binary $DK (DATAKIT_BIN; checkout at $commit$dirty)"
	else
		echo "commit $commit$dirty; binary $DK built from this checkout"
	fi
	echo "$(nproc --all) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(uname -r), $($GO version | awk '{print $3}'), $(nginx -v 2>&1 | awk '{print $3}'), wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}')"
	echo "layout: proxy on CPU $GW_CPU (datakit GOMAXPROCS=1 / nginx 1 worker); upstream + wrk on CPU $LOAD_CPU"
	echo "load: wrk -t1 -c$CONNS -d$DURATION --latency after a $WARMUP warm-up; CPU from /proc/PID/stat (CLK_TCK=$CLK_TCK)"
	echo "machine load average before: $LOAD_START; after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every number)"
	echo
	printf '%-24s %10s %10s %10s %12s %8s\n' "workload" "req/s" "p50 us" "p99 us" "proxy us/req" "errors"
	local w
	for w in "${RAN[@]}"; do
		printf '%-24s %10s %10s %10s %12s %8s\n' "${TITLE[$w]}" "${RPS[$w]}" "${P50[$w]}" "${P99[$w]}" "${CPU[$w]}" "${ERRS[$w]}"
	done
	echo
	echo "ratios (req/s: higher is better; latency and CPU: lower is better)"
	printf '%-24s %9s %9s %9s | %9s %9s %9s %9s\n' "" "rps/dir" "p50/dir" "p99/dir" "rps/ngx" "p50/ngx" "p99/ngx" "cpu/ngx"
	for w in "${RAN[@]}"; do
		[[ $w != direct ]] || continue
		local d=none n=none
		if has direct; then d=direct; fi
		if has nginx; then n=nginx; fi
		printf '%-24s %9s %9s %9s | %9s %9s %9s %9s\n' "${TITLE[$w]}" \
			"$(ratio "${RPS[$w]}" "${RPS[$d]:-}")" "$(ratio "${P50[$w]}" "${P50[$d]:-}")" "$(ratio "${P99[$w]}" "${P99[$d]:-}")" \
			"$(ratio "${RPS[$w]}" "${RPS[$n]:-}")" "$(ratio "${P50[$w]}" "${P50[$n]:-}")" "$(ratio "${P99[$w]}" "${P99[$n]:-}")" \
			"$(ratio "${CPU[$w]}" "${CPU[$n]:-}")"
	done
	echo
	echo "targets"
	target() { # LABEL MEASURED LIMIT OP(le|ge) UNIT
		local verdict
		if [[ -z $2 || $2 == - ]]; then
			verdict="n/a"
		else
			verdict=$(awk -v m="$2" -v l="$3" -v op="$4" 'BEGIN { ok = (op == "le") ? (m <= l) : (m >= l); print ok ? "PASS" : "FAIL" }')
		fi
		local sign="<="
		[[ $4 == le ]] || sign=">="
		printf '  %-4s %-42s %10s %-6s (target %s %s)\n' "$verdict" "$1" "${2:--}" "$5" "$sign" "$3"
	}
	local jqdelta="" rpsratio=""
	if has plain && has jq; then jqdelta=$(awk -v a="${CPU[jq]}" -v b="${CPU[plain]}" 'BEGIN { printf "%.1f", a - b }'); fi
	if has plain && has nginx; then rpsratio=$(ratio "${RPS[plain]}" "${RPS[nginx]}"); fi
	target "plain proxy: gateway CPU per request" "${CPU[plain]:-}" 40 le "us"
	target "plain proxy: req/s vs nginx" "$rpsratio" 0.65 ge "x"
	target "one jq node: added CPU per request" "$jqdelta" 10 le "us"
	target "token exchange: gateway CPU per request" "${CPU[token]:-}" 80 le "us"
	target "3-way fan-out: gateway CPU per request" "${CPU[fanout]:-}" 120 le "us"
	local bad=0
	for w in "${RAN[@]}"; do [[ ${ERRS[$w]} == 0 ]] || bad=1; done
	[[ $bad == 0 ]] || echo "WARNING: some runs had errors (non-2xx answers or socket errors); their numbers are not comparable"
}
mkdir -p "$RESULTS_DIR"
report | tee "$RESULTS_DIR/latest.txt"
