# Shared by the load scenarios scripts/hardening/tNN-*.sh (hardening.md §3
# [load]); sourced, never run. It starts the gateway, the fake upstreams and
# toxiproxy on 127.0.0.1 only, records every process it starts and stops
# exactly those on exit (also on failure, timeout or Ctrl-C), and prints the
# verdict: one `RESULT <name> PASS|FAIL|SKIP <numbers>` line, exit 1 on FAIL.
#
# Environment (set by run.sh; a script run alone builds what it needs):
#   DATAKIT_BIN  the gateway binary (default: build bin/datakit)
#   FAKE_BIN     scripts/hardening/fake, built (default: build it into TMP)
#   TOOLS_BIN    where `make tools` put vegeta, hey, toxiproxy, h2spec (.tools/bin)
#   GW_CPU=0 LOAD_CPU=1   the gateway alone on one core; fakes and load on the other
#   KEEP_TMP=1   keep the scenario's temporary directory (logs, vegeta results)
# shellcheck shell=bash disable=SC2034 # GW_EXIT, CLK_TCK…: set here, read by the scenarios
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NAME=$(basename "$0" .sh)
GO=${GO:-go}
TOOLS_BIN=${TOOLS_BIN:-$ROOT/.tools/bin}
PATH=$TOOLS_BIN:$PATH
GW_CPU=${GW_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
TMP=$(mktemp -d "/tmp/datakit-$NAME.XXXXXX")

log() { printf '[%s] %s\n' "$NAME" "$*" >&2; }

# --- processes: every PID we start is in PIDS; cleanup stops them all. ---
PIDS=()
forget_pid() { # PID: waited for, so its number may be reused and must not be signalled
	local keep=() p
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	PIDS=("${keep[@]+"${keep[@]}"}")
}
stop_pids() { # PID...: TERM all, up to 5 s for them, then KILL
	local p alive
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for _ in $(seq 1 50); do
		alive=0
		for p in "$@"; do if kill -0 "$p" 2>/dev/null; then alive=1; fi; done
		[[ $alive == 1 ]] || break
		sleep 0.1
	done
	for p in "$@"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ ${#PIDS[@]} -gt 0 ]]; then stop_pids "${PIDS[@]}"; fi
	if [[ $rc -ne 0 && -z ${RESULT_PRINTED:-} ]]; then
		echo "RESULT $NAME FAIL aborted (exit $rc)"
		for f in "$TMP"/*.log; do
			[[ -s $f ]] || continue
			log "--- tail of $(basename "$f")"
			tail -n 15 "$f" >&2 || true
		done
	fi
	if [[ -n ${KEEP_TMP:-} ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bg_run OUT CMD...: run CMD (stdout+stderr to OUT) in the background and
# wait for it, so that a signal to this script is handled at once rather than
# after a long foreground tool returns. Returns CMD's status.
bg_run() {
	local out=$1 p rc=0
	shift
	"$@" >"$out" 2>&1 &
	p=$!
	PIDS+=("$p")
	wait "$p" || rc=$?
	forget_pid "$p"
	return "$rc"
}
# Background processes are started as plain commands (`taskset … &`), never
# through a shell function, so that $! is the process itself.

# --- verdict ---
FAILED=0
NUMBERS=()
# expect DESCRIPTION MEASURED OP LIMIT: OP is le, lt, ge, gt or eq (numbers).
expect() {
	local desc=$1 m=$2 op=$3 lim=$4 ok sign
	ok=$(awk -v m="$m" -v l="$lim" -v op="$op" 'BEGIN {
		if (m == "" || m !~ /^-?[0-9.e+]+$/) { print 0; exit }
		if (op == "le") print (m + 0 <= l + 0); else if (op == "lt") print (m + 0 < l + 0)
		else if (op == "ge") print (m + 0 >= l + 0); else if (op == "gt") print (m + 0 > l + 0)
		else print (m + 0 == l + 0) }')
	case $op in le) sign="<=" ;; lt) sign="<" ;; ge) sign=">=" ;; gt) sign=">" ;; *) sign="==" ;; esac
	if [[ $ok == 1 ]]; then
		log "ok    $desc: ${m:-none} (want $sign $lim)"
	else
		log "FAIL  $desc: ${m:-none} (want $sign $lim)"
		FAILED=1
	fi
}
# note KEY=VALUE: a measured number for the RESULT line.
note() { NUMBERS+=("$*"); }
finish() {
	RESULT_PRINTED=1
	local verdict=PASS
	[[ $FAILED == 0 ]] || verdict=FAIL
	echo "RESULT $NAME $verdict ${NUMBERS[*]}"
	[[ $FAILED == 0 ]]
}
skip() { # REASON
	RESULT_PRINTED=1
	echo "RESULT $NAME SKIP $*"
	exit 0
}

# --- prerequisites ---
APT_UPDATED=""
# need_apt COMMAND PACKAGE: install PACKAGE with apt-get when COMMAND is
# missing; skip the scenario (with the reason) when that is impossible.
need_apt() {
	local cmd=$1 pkg=$2 sudo=()
	command -v "$cmd" >/dev/null && return 0
	command -v apt-get >/dev/null || skip "$cmd missing and apt-get unavailable (Debian package $pkg)"
	[[ $EUID -eq 0 ]] || sudo=(sudo -n)
	if [[ -z $APT_UPDATED ]]; then
		log "apt-get update"
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$TMP/apt.out" 2>&1 ||
			skip "$cmd missing and apt-get update failed: $(tail -n 1 "$TMP/apt.out")"
		APT_UPDATED=1
	fi
	log "apt-get install $pkg"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >"$TMP/apt.out" 2>&1 ||
		skip "$cmd missing and apt-get install $pkg failed: $(tail -n 1 "$TMP/apt.out")"
	command -v "$cmd" >/dev/null || skip "$cmd missing after installing $pkg"
}
need_tool() { # NAME: a `make tools` binary
	command -v "$1" >/dev/null || skip "$1 missing: run make tools (installs into $TOOLS_BIN)"
}
command -v curl >/dev/null || skip "curl is required"
command -v jq >/dev/null || need_apt jq jq
command -v taskset >/dev/null || skip "taskset (util-linux) is required"
[[ $(nproc --all) -ge 2 ]] || { GW_CPU=0 LOAD_CPU=0; }

# --- binaries ---
if [[ -z ${DATAKIT_BIN:-} ]]; then
	log "building bin/datakit"
	(cd "$ROOT" && $GO build -o bin/datakit ./cmd/datakit)
	DATAKIT_BIN=$ROOT/bin/datakit
fi
if [[ -z ${FAKE_BIN:-} ]]; then
	(cd "$ROOT" && $GO build -o "$TMP/fake" ./scripts/hardening/fake)
	FAKE_BIN=$TMP/fake
fi

# wait_for_line FILE REGEX SECONDS PID: until FILE has a line matching REGEX
# (printed); fails when PID exits first or time runs out.
wait_for_line() {
	local file=$1 re=$2 deadline=$((SECONDS + $3)) pid=$4 line
	while :; do
		line=$(grep -m1 -E "$re" "$file" 2>/dev/null || true)
		if [[ -n $line ]]; then
			printf '%s\n' "$line"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || { log "process $pid exited: $(tail -n 3 "$file")"; return 1; }
		[[ $SECONDS -lt $deadline ]] || { log "timed out waiting for /$re/ in $file"; return 1; }
		sleep 0.1
	done
}
wait_http() { # URL SECONDS: until URL answers 200
	local deadline=$((SECONDS + $2))
	until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" || true) == 200 ]]; do
		[[ $SECONDS -lt $deadline ]] || return 1
		sleep 0.1
	done
}

# start_fake VAR [FLAGS...]: a fake on 127.0.0.1:0 (load core); VAR gets
# its host:port.
FAKES=0
start_fake() {
	local var=$1 f line
	shift
	FAKES=$((FAKES + 1))
	f=$TMP/fake$FAKES.log
	taskset -c "$LOAD_CPU" "$FAKE_BIN" "$@" >"$f" 2>&1 &
	PIDS+=($!)
	line=$(wait_for_line "$f" '^listening ' 10 $!) || exit 1
	printf -v "$var" '%s' "${line#listening }"
}
fake_stat() { # ADDR FIELD: one counter of a fake's /stats
	curl -s --max-time 5 "http://$1/stats" | jq -r ".$2"
}

# start_gateway CONFIG [--set NAME=VALUE]...: `datakit serve` DB-less on
# 127.0.0.1:0 listeners, alone on the gateway core. Sets GW_PID, GW_LOG, PROXY,
# STATUS, ADMIN (host:port) and, with GW_TLS=1 (a self-signed certificate
# made here), TLS: the HTTP/2 + TLS proxy listener.
GW_RUNS=0
start_gateway() {
	local config=$1 line addrs tls=() args
	shift
	GW_RUNS=$((GW_RUNS + 1))
	GW_LOG=$TMP/gateway$GW_RUNS.log
	args=(serve --database off --declarative-config "$config"
		--status-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
		--set access_log=off --set log_level=info)
	if [[ ${GW_TLS:-0} == 1 ]]; then
		make_cert
		args+=(--proxy-listen "127.0.0.1:0, 127.0.0.1:0 http2 ssl" --set "ssl_cert=$TMP/cert.pem" --set "ssl_cert_key=$TMP/key.pem")
	else
		args+=(--proxy-listen 127.0.0.1:0)
	fi
	taskset -c "$GW_CPU" "$DATAKIT_BIN" "${args[@]}" "$@" >"$GW_LOG" 2>&1 &
	GW_PID=$!
	PIDS+=("$GW_PID")
	line=$(wait_for_line "$GW_LOG" 'msg="datakit started"' 15 "$GW_PID") || exit 1
	# listeners="[proxy... status admin]": proxy listeners first, in order.
	addrs=${line##*listeners=\"[}
	# shellcheck disable=SC2206
	addrs=(${addrs%%]*})
	PROXY=${addrs[0]}
	if [[ ${GW_TLS:-0} == 1 ]]; then
		TLS=${addrs[1]}
		tls=(x)
	fi
	STATUS=${addrs[1 + ${#tls[@]}]}
	ADMIN=${addrs[2 + ${#tls[@]}]}
	wait_http "http://$STATUS/status/ready" 15 || { log "gateway not ready: $(tail -n 3 "$GW_LOG")"; exit 1; }
	log "gateway pid $GW_PID: proxy $PROXY${TLS:+ tls $TLS} status $STATUS admin $ADMIN"
}
# stop_gateway: SIGTERM and wait; GW_EXIT gets its exit status.
stop_gateway() {
	kill -TERM "$GW_PID" 2>/dev/null || true
	GW_EXIT=0
	wait "$GW_PID" || GW_EXIT=$?
	forget_pid "$GW_PID"
}
make_cert() {
	[[ -s $TMP/cert.pem ]] && return 0
	need_apt openssl openssl
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
		-keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.out" 2>&1
}
# post_config FILE: POST /config (DB-less) with a YAML document; prints the status.
post_config() {
	curl -s -o "$TMP/post_config.out" -w '%{http_code}' --max-time 10 \
		-H 'Content-Type: application/yaml' --data-binary "@$1" "http://$ADMIN/config" || echo 000
}

# --- the gateway process, sampled ---
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo ""; }
# cpu_ticks PID: utime + stime (fields 14 and 15 of /proc/PID/stat, after "pid (comm) ").
cpu_ticks() { local f; f=$(cat "/proc/$1/stat") && awk '{print $12 + $13}' <<<"${f##*) }"; }
CLK_TCK=$(getconf CLK_TCK)
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# metric NAME: an unlabelled series from the status listener's /metrics.
# (awk reads to the end: an early exit would fail curl, and with it the pipeline)
metric() { curl -s --max-time 5 "http://$STATUS/metrics" | awk -v n="$1" '$1 == n && !f {print $2; f = 1}'; }
inflight() { curl -s --max-time 5 "http://$STATUS/status" | jq -r '.server.connections_active'; }

# --- free ports, for tools that cannot bind port 0 and report it ---
# Below the ephemeral range, where an outgoing connection's local port cannot
# take it between the check and the bind; start_toxiproxy still retries.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # VAR
	local p low
	low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
	((low > 11000)) || low=60000
	for _ in $(seq 1 200); do
		p=$((10000 + RANDOM % (low - 10000)))
		port_busy "$p" || { printf -v "$1" '%s' "$p"; return 0; }
	done
	log "no free port found"
	exit 1
}

# --- toxiproxy ---
# start_toxiproxy: toxiproxy-server on a free loopback port; sets TOXI.
start_toxiproxy() {
	local try pid
	need_tool toxiproxy-server
	need_tool toxiproxy-cli
	for try in 1 2 3; do
		free_port TOXI_PORT
		TOXI=127.0.0.1:$TOXI_PORT
		taskset -c "$LOAD_CPU" toxiproxy-server -host 127.0.0.1 -port "$TOXI_PORT" >"$TMP/toxiproxy.log" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		wait_http "http://$TOXI/version" 10 && return 0
		log "toxiproxy did not start (try $try): $(grep -m1 error "$TMP/toxiproxy.log")"
		stop_pids "$pid"
		forget_pid "$pid"
	done
	exit 1
}
# toxi_proxy VAR NAME UPSTREAM: a proxy listening on 127.0.0.1:0; VAR gets its address.
toxi_proxy() {
	local addr
	addr=$(curl -s --max-time 5 -X POST "http://$TOXI/proxies" \
		-d "{\"name\":\"$2\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"$3\"}" | jq -r '.listen // empty')
	[[ -n $addr ]] || { log "toxiproxy: cannot create proxy $2"; exit 1; }
	printf -v "$1" '%s' "$addr"
}
toxi() { toxiproxy-cli -h "http://$TOXI" "$@" >>"$TMP/toxiproxy-cli.log" 2>&1; }

# --- vegeta ---
# vegeta_json RESULTS.bin: the summary report as JSON.
vegeta_json() { vegeta report -type=json "$1"; }
# vegeta_codes REPORT.json: "200:n 503:n ..." from a JSON report.
vegeta_codes() { jq -r '.status_codes | to_entries | map("\(.key):\(.value)") | join(",")' "$1"; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e6 }'; } # ns -> ms
