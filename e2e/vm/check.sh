#!/bin/bash
# The swarm-vm e2e checks, run INSIDE the node by `scripts/swarm-vm run`
# (see e2e/vm/run.sh). Every check runs meshtrace against the live node and
# compares its JSON with what dockerd and the kernel say right now (truth.sh):
# published ports, fwmarks, IPVS real servers, sandbox and task addresses,
# namespace roles and Docker metadata. Nothing is compared with a string
# copied from an earlier run.
#
# Writes $MT_OUT/results.txt (one "PASS name" / "FAIL name: reason" line per
# check) and $MT_OUT/outputs/ (meshtrace's outputs, each check's log).
# shellcheck disable=SC2016 # jq filters are single-quoted on purpose
set -uo pipefail
# shellcheck source=../../scripts/vm/services.sh
source "$MT_VM_DIR/services.sh"
# shellcheck source=truth.sh
source "$MT_JOB_DIR/truth.sh"
# record.sh only defines functions when sourced (bundle writing).
# shellcheck source=../../scripts/vm/record.sh
source "$MT_VM_DIR/record.sh"

OUT=$MT_OUT/outputs
RESULTS=$MT_OUT/results.txt
mkdir -p "$OUT"
: >"$RESULTS"

# --- harness -------------------------------------------------------------------

# XFAIL[NAME]=WHY: the check NAME is expected to fail today, for the
# reason WHY (naming the issue point whose fix makes it pass). It then
# reports "XFAIL NAME: …", which counts as neither passed nor failed; once it
# passes it reports "PASS NAME (…): XPASS …" so that the entry gets dropped.
declare -A XFAIL=()

# check NAME FUNC ARGS...: run FUNC in a subshell with `set -e`. A failing
# command or fail() stops the check; want/want_set record a mismatch and go
# on, so one run reports every difference. The check fails on either.
check() {
	local name=$1 log=$OUT/$1.log start=$SECONDS rc n
	shift
	export MISMATCHES=$OUT/$name.mismatches
	: >"$MISMATCHES"
	(
		set -e
		"$@"
	) >"$log" 2>&1
	rc=$?
	n=$(wc -l <"$MISMATCHES")
	local why=${XFAIL[$name]:-} verdict=FAIL reason
	[[ -z $why ]] || verdict=XFAIL
	if ((rc == 0 && n == 0)); then
		echo "PASS $name ($((SECONDS - start))s)${why:+: XPASS, expected to fail ($why): drop its XFAIL entry}"
	else
		if ((rc != 0)); then
			reason=$(grep -v '^+' "$log" | tail -1)
		else
			reason="$(head -1 "$MISMATCHES")$( ((n > 1)) && echo " (+$((n - 1)) more)")"
		fi
		echo "$verdict $name ($((SECONDS - start))s): $reason${why:+ [expected: $why]}"
	fi >>"$RESULTS"
	echo "check $name: status $rc, $n mismatches, $((SECONDS - start))s"
}

fail() {
	echo "$*"
	exit 1
}

# mismatch MSG: record a difference between meshtrace and the node.
mismatch() { echo "$*" | tee -a "$MISMATCHES"; }

# want DESC GOT WANT
want() { [[ $2 == "$3" ]] || mismatch "$1: meshtrace says '$2', the node says '$3'"; }

# want_set DESC GOT WANT: equal as sets of words. An empty WANT is a broken
# truth helper, not a pass.
want_set() {
	local g w
	g=$(tr -s ' \n' '\n' <<<"$2" | sed '/^$/d' | sort -u | paste -sd' ')
	w=$(tr -s ' \n' '\n' <<<"$3" | sed '/^$/d' | sort -u | paste -sd' ')
	[[ -n $w ]] || fail "$1: the node says nothing (truth helper broken?)"
	[[ $g == "$w" ]] || mismatch "$1: meshtrace says [$g], the node says [$w]"
}

# mt NAME ARGS...: meshtrace ARGS > outputs/NAME.out (stderr NAME.err), bounded.
mt() {
	local name=$1
	shift
	echo "meshtrace $*"
	timeout 180 meshtrace "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
}

# FLOW0 is a trace's first flow that began in the capture: a connection
# closing as the trace starts shows up as a midstream flow before it.
FLOW0='first(.flows[] | select(.midstream | not))'

# jqr NAME FILTER [JQ-ARGS...]: jq -r FILTER on outputs/NAME.out.
jqr() {
	local file=$OUT/$1.out filter=$2
	shift 2
	jq -r "$@" "$filter" "$file"
}

# --- checks --------------------------------------------------------------------

# check_inspect: namespaces, roles, sandbox addresses, published ports,
# fwmarks, backends and Docker metadata of the live node.
check_inspect() {
	mt inspect inspect -o json || fail "meshtrace inspect exited $?: $(tail -1 "$OUT/inspect.err")"
	local ns net p port proto fw roles
	# "name role" of every namespace, read once (each jq costs under TCG).
	roles=$(jqr inspect '.namespaces[] | "\(.name) \(.role)"')
	for ns in host $(docker_netns_names); do
		awk '{print $1}' <<<"$roles" | grep -qx "$ns" || fail "netns $ns missing from inspect"
	done
	grep -qx "host host" <<<"$roles" || fail "host netns not in role host"
	role_of() { awk -v n="$1" '$1 == n {print $2}' <<<"$roles"; }
	want "role of ingress_sbox" "$(role_of ingress_sbox)" ingress-sandbox
	for net in $(docker network ls -q --filter driver=overlay); do
		ns=$(overlay_netns "$net")
		want "role of $ns" "$(role_of "$ns")" overlay
	done
	for ns in $(docker_netns_names | grep '^lb_'); do want "role of $ns" "$(role_of "$ns")" lb; done
	for ns in $(docker ps -q | xargs docker inspect -f '{{.NetworkSettings.SandboxKey}}' | xargs -n1 basename); do
		want "role of $ns" "$(role_of "$ns")" task
	done
	# The ingress sandbox owns its ingress and gwbridge addresses.
	local addrs
	addrs=$(jqr inspect '.namespaces[] | select(.name == "ingress_sbox") | .links[] | (.addrs // [])[] | sub("/.*"; "")')
	grep -qx "$(sbox_ip ingress)" <<<"$addrs" || fail "ingress_sbox lacks its ingress address $(sbox_ip ingress)"
	grep -qx "$(sbox_ip docker_gwbridge)" <<<"$addrs" || fail "ingress_sbox lacks its gwbridge address $(sbox_ip docker_gwbridge)"
	# Published ports, their fwmarks and backends.
	want_set "published ports" "$(jqr inspect '.published[] | "\(.proto)/\(.port)"')" \
		"$(docker_published | awk '{print $1 "/" $2}')"
	while read -r proto port _ svc; do
		fw=$(ingress_fwmark "$proto" "$port") || fail "ingress_sbox has no mark for $proto/$port"
		p=".published[] | select(.proto == \"$proto\" and .port == $port)"
		want "fwmark of $proto/$port" "$(jqr inspect "$p | .fwmark")" "$fw"
		want_set "backends of $proto/$port" \
			"$(jqr inspect "$p | .backends | if type == \"array\" then map(if type == \"object\" then (.ip // .addr) else . end)[] else . end")" \
			"$(ipvs_reals ingress_sbox "$fw")"
		want_set "backends of $proto/$port vs docker tasks of $svc" "$(ipvs_reals ingress_sbox "$fw")" "$(task_ips "$svc" ingress)"
	done < <(docker_published)
}

# check_docker_meta: service and task names on task namespaces, from the engine API.
check_docker_meta() {
	[[ -s $OUT/inspect.out ]] || mt inspect inspect -o json || fail "meshtrace inspect exited $?"
	local ns svc task got gsvc mt_meta
	# One docker inspect and one jq for all (each costs under TCG).
	# shellcheck disable=SC2046
	docker inspect $(docker ps -q) | jq -r '.[] | .Config.Labels as $l
		| "\(.NetworkSettings.SandboxKey | sub(".*/"; "")) \($l["com.docker.swarm.service.name"]) \($l["com.docker.swarm.task.name"])"' \
		>"$OUT/docker-meta.truth"
	mt_meta=$(jqr inspect '.namespaces[] | "\(.name) \(.docker.service // "-") \(.docker.task // "-")"')
	[[ -s $OUT/docker-meta.truth ]] || fail "docker inspect lists no container"
	while read -r ns svc task; do
		gsvc="" got=""
		read -r _ gsvc got < <(awk -v n="$ns" '$1 == n' <<<"$mt_meta") || true
		want "service on netns $ns" "${gsvc:--}" "$svc"
		# The task may be named in full (web.1.<task id>) or short (web.1).
		[[ $got != - && -n $got && $task == "$got"* ]] || fail "task on netns $ns: meshtrace says '$got', the node says '$task'"
	done <"$OUT/docker-meta.truth"
}

# check_path PROTO PORT: the published path against the node. A backend
# whose task runs on another node (two-node swarm) must be remote, reached
# through the ingress overlay's VXLAN device, with that node as VTEP.
check_path() {
	local proto=$1 port=$2 name=path-$1-$2 svc target fw gw sbox reals ip ns h remote=0
	svc=$(published_field "$proto" "$port" service)
	target=$(published_field "$proto" "$port" target)
	[[ -n $svc ]] || fail "$proto/$port is not published by dockerd"
	fw=$(ingress_fwmark "$proto" "$port") || fail "ingress_sbox has no mark for $proto/$port"
	gw=$(sbox_ip docker_gwbridge) sbox=$(sbox_ip ingress)
	reals=$(ipvs_reals ingress_sbox "$fw")
	mt "$name" path --proto "$proto" --port "$port" -o json ||
		fail "meshtrace path exited $?: $(tail -1 "$OUT/$name.err")"
	want complete "$(jqr "$name" .complete)" true
	want proto "$(jqr "$name" .proto)" "$proto"
	want port "$(jqr "$name" .port)" "$port"
	h='.hops[] | select'
	want "dnat in host" "$(jqr "$name" "[$h(.kind == \"dnat\" and .netns == \"host\") | .to][0]")" "$gw:$port"
	want "mark in ingress_sbox" "$(jqr "$name" "[$h(.kind == \"mark\" and .netns == \"ingress_sbox\") | .mark][0]")" "$fw"
	want "ipvs fwmark" "$(jqr "$name" "[$h(.kind == \"ipvs\") | .fwmark][0]")" "$fw"
	want "ipvs netns" "$(jqr "$name" "[$h(.kind == \"ipvs\") | .netns][0]")" ingress_sbox
	want "snat in ingress_sbox" "$(jqr "$name" "[$h(.kind == \"snat\" and .netns == \"ingress_sbox\") | .to][0]")" "$sbox"
	want "kinds dnat, mark, ipvs, snat all present" \
		"$(jqr "$name" '[.hops[].kind | select(. == "dnat" or . == "mark" or . == "ipvs" or . == "snat")] | unique | length')" 4
	want "hop order" "$(jqr "$name" '[.hops[].kind] | (index("dnat") < index("mark")) and (index("mark") < index("ipvs")) and (index("ipvs") < index("snat"))')" true
	want_set "backends" "$(jqr "$name" '.backends[].ip')" "$reals"
	want_set "backends vs docker tasks of $svc" "$reals" "$(task_ips "$svc" ingress)"
	for ip in $reals; do
		ns=$(netns_of_ip "$svc" ingress "$ip")
		local b=".backends[] | select(.ip == \"$ip\")"
		want "target_port of backend $ip" "$(jqr "$name" "$b | .target_port")" "$target"
		if [[ -z $ns ]]; then
			remote=$((remote + 1))
			path_remote_backend "$name" "$svc" "$ip"
			continue
		fi
		want "netns of backend $ip" "$(jqr "$name" "$b | .netns")" "$ns"
		want "remote of backend $ip" "$(jqr "$name" "$b | .remote")" false
		want "redirect of backend $ip" "$(jqr "$name" "[$b | .hops[] | select(.kind == \"redirect\") | .to_port][0]")" "$target"
	done
	want "remote backends" "$(jqr "$name" '[.backends[] | select(.remote)] | length')" "$remote"
}

# path_remote_backend NAME SERVICE IP: a real server with no task on this
# node: remote, no netns, via the ingress overlay's VXLAN device, and the VTEP
# is the node that the network DB (and the manager's scheduler) puts it on.
path_remote_backend() {
	local name=$1 svc=$2 ip=$3 b=".backends[] | select(.ip == \"$3\")" host ovl
	host=$(task_host "$svc" ingress "$ip")
	[[ -n $host && $host != "$MT_NODE_IP" ]] || fail "backend $ip has no task here, and the network DB puts it on '$host'"
	[[ $MT_IS_MANAGER != true ]] || want "node of backend $ip: network DB vs scheduler" "$host" "$(task_node_addr "$svc" ingress "$ip")"
	ovl=$(overlay_netns ingress)
	want "remote of backend $ip" "$(jqr "$name" "$b | .remote")" true
	want "netns of backend $ip" "$(jqr "$name" "$b | .netns")" null
	want "vtep of backend $ip" "$(jqr "$name" "$b | .vtep")" "$host"
	want "via of backend $ip" "$(jqr "$name" "$b | .via")" "$ovl/$(vxlan_dev "$ovl")"
	# Docker's word on it: the task, its service and its node.
	want "task of backend $ip" "$(jqr "$name" "$b | .task")" "$(task_slot "$svc" ingress "$ip")"
	want "service of backend $ip" "$(jqr "$name" "$b | .service")" "$svc"
	want "node of backend $ip" "$(jqr "$name" "$b | .node")" "$host"
}

# check_unpublished: a port nobody published is an error naming it.
check_unpublished() {
	local port=9999
	while docker_published | awk '{print $2}' | grep -qx "$port"; do port=$((port + 1)); done
	if mt unpublished path --port "$port" -o json; then fail "path --port $port succeeded"; fi
	grep -q "$port" "$OUT/unpublished.err" || fail "stderr does not name $port: $(head -1 "$OUT/unpublished.err")"
}

# check_east_west [FROM SERVICE NETWORK]: FROM's task -> SERVICE's VIP on
# NETWORK (default: caller -> api on appnet), from FROM's netns. Where the
# mark and IPVS live depends on the Docker version: the caller's own netns
# (mangle OUTPUT) on older ones, the network's lb_ netns (mangle INPUT on the
# VIP it holds) on current ones. The node decides which; meshtrace must agree.
# The result is outputs/east-west[-FROM-SERVICE].out.
check_east_west() {
	local from=${1:-caller} svc=${2:-api} net=${3:-appnet} name=east-west
	local vip cns fw markns lbns reals ip ns lbip h='.hops[] | select'
	(($# == 0)) || name=east-west-$from-$svc
	vip=$(service_vip "$svc" "$net")
	cns=$(container_netns "$(service_containers "$from" | head -1)")
	[[ -n $vip && -n $cns ]] || fail "no $svc VIP on $net or $from netns"
	fw=$(mangle_mark "$cns" OUTPUT "-d $vip/32 ") || fw=""
	markns=$cns
	if [[ -z $fw ]]; then
		for ns in $(docker_netns_names | grep '^lb_'); do
			fw=$(mangle_mark "$ns" INPUT "-d $vip/32 ") && [[ -n $fw ]] && { markns=$ns; break; }
		done
	fi
	[[ -n $fw ]] || fail "no mangle mark for VIP $vip in $cns or any lb_ netns"
	# shellcheck disable=SC2046
	lbns=$(ipvs_netns_with "$fw" "$markns" "$cns") || fail "no netns has IPVS FWM $fw"
	reals=$(ipvs_reals "$lbns" "$fw")
	echo "node: VIP $vip, mark $fw in $markns, IPVS in $lbns, reals $(paste -sd' ' <<<"$reals")"
	mt "$name" path --vip "$vip" --netns "$cns" --port 80 -o json ||
		fail "meshtrace path --vip exited $?: $(tail -1 "$OUT/$name.err")"
	want complete "$(jqr "$name" .complete)" true
	want "mark" "$(jqr "$name" "[$h(.kind == \"mark\") | .mark][0]")" "$fw"
	want "mark netns" "$(jqr "$name" "[$h(.kind == \"mark\") | .netns][0]")" "$markns"
	want "ipvs fwmark" "$(jqr "$name" "[$h(.kind == \"ipvs\") | .fwmark][0]")" "$fw"
	want "ipvs netns" "$(jqr "$name" "[$h(.kind == \"ipvs\") | .netns][0]")" "$lbns"
	if [[ $lbns == lb_* ]]; then
		lbip=$(docker network inspect "$net" | jq -r --arg k "lb-$net" '.[0].Containers[$k].IPv4Address // empty | sub("/.*"; "")')
		want "snat in $lbns" "$(jqr "$name" "[$h(.kind == \"snat\") | .to][0]")" "$lbip"
	fi
	want_set "backends" "$(jqr "$name" '.backends[].ip')" "$reals"
	want_set "backends vs docker tasks of $svc" "$reals" "$(task_ips "$svc" "$net")"
	for ip in $reals; do
		want "netns of backend $ip" "$(jqr "$name" ".backends[] | select(.ip == \"$ip\") | .netns")" \
			"$(netns_of_ip "$svc" "$net" "$ip")"
	done
}

# check_trace PROTO PORT: `trace --probe` (traffic from this host) across
# every hop.
check_trace() {
	local proto=$1 port=$2 name=trace-$1-$2
	mt "$name" trace --proto "$proto" --port "$port" --probe --count 1 --timeout 30s -o json ||
		fail "meshtrace trace exited $?: $(tail -1 "$OUT/$name.err")"
	trace_validate "$name" "$proto" "$port"
}

# check_trace_client PROTO PORT: `trace` without --probe while the client
# netns (an outside user: PREROUTING, not OUTPUT) sends the traffic.
check_trace_client() {
	trace_from "trace-client-$1-$2" "$1" "$2" "$MT_CLIENT_IP" client_send
}

# client_send PROTO PORT: one request from the client netns.
client_send() {
	if [[ $1 == udp ]]; then
		echo ping | ip netns exec "$MT_CLIENT_NETNS" socat -T3 - "UDP4:$MT_NODE_IP:$2"
	else
		client_get "$MT_NODE_IP:$2"
	fi
}

# trace_from NAME PROTO PORT CLIENT SEND: `trace` without --probe while
# `SEND PROTO PORT` makes a request every 3 s; the flow must come from CLIENT
# (an address) to this node's PORT.
trace_from() {
	local name=$1 proto=$2 port=$3 client=$4 send=$5 pid i rc
	echo "meshtrace trace --proto $proto --port $port --count 1 --timeout 60s -o json (client $client)"
	timeout 120 meshtrace trace --proto "$proto" --port "$port" --count 1 --timeout 60s -o json \
		>"$OUT/$name.out" 2>"$OUT/$name.err" &
	pid=$!
	for ((i = 0; i < 15; i++)); do
		sleep 3
		kill -0 "$pid" 2>/dev/null || break
		"$send" "$proto" "$port" || true
	done
	rc=0
	wait "$pid" || rc=$?
	((rc == 0)) || fail "meshtrace trace exited $rc: $(tail -1 "$OUT/$name.err")"
	trace_validate "$name" "$proto" "$port"
	want "client address" "$(jqr "$name" "$FLOW0.client | sub(\":[0-9]+\$\"; \"\")")" "$client"
	want "dnat rewrite from" "$(jqr "$name" "[$FLOW0.rewrites[] | select(.kind == \"dnat\") | .from][0]")" \
		"$MT_NODE_IP:$port"
}

# trace_validate NAME PROTO PORT: the first flow of a trace against the node.
trace_validate() {
	local name=$1 proto=$2 port=$3 svc target fw f r bip bns
	svc=$(published_field "$proto" "$port" service)
	target=$(published_field "$proto" "$port" target)
	fw=$(ingress_fwmark "$proto" "$port") || fail "ingress_sbox has no mark for $proto/$port"
	f="($FLOW0)"
	[[ $(jqr "$name" '[.flows[] | select(.midstream | not)] | length') -ge 1 ]] || fail "no flow traced"
	want complete "$(jqr "$name" "$f.complete")" true
	bip=$(jqr "$name" "$f.backend.ip")
	grep -qx "$bip" <<<"$(task_ips "$svc" ingress)" || fail "backend $bip is not a task of $svc"
	bns=$(netns_of_ip "$svc" ingress "$bip")
	r="$f.rewrites[] | select"
	want "dnat rewrite" "$(jqr "$name" "[$r(.kind == \"dnat\") | .to][0]")" "$(sbox_ip docker_gwbridge):$port"
	want "ipvs rewrite fwmark" "$(jqr "$name" "[$r(.kind == \"ipvs\") | .fwmark][0]")" "$fw"
	want "ipvs rewrite to" "$(jqr "$name" "[$r(.kind == \"ipvs\") | .to][0]" | sed 's/:.*//')" "$bip"
	want "snat rewrite" "$(jqr "$name" "[$r(.kind == \"snat\" and .netns == \"ingress_sbox\") | .to][0]" | sed 's/:.*//')" \
		"$(sbox_ip ingress)"
	want "seen in ingress_sbox" "$(jqr "$name" "[$f.hops[] | select(.netns == \"ingress_sbox\")] | length > 0")" true
	if [[ -z $bns ]]; then
		trace_remote "$name" "$svc" "$bip"
		return
	fi
	want "backend netns" "$(jqr "$name" "$f.backend.netns")" "$bns"
	want "redirect rewrite" "$(jqr "$name" "[$r(.kind == \"redirect\") | .to_port][0]")" "$target"
	want "redirect netns" "$(jqr "$name" "[$r(.kind == \"redirect\") | .netns][0]")" "$bns"
	want "seen in $bns" "$(jqr "$name" "[$f.hops[] | select(.netns == \"$bns\")] | length > 0")" true
}

# trace_remote NAME SERVICE IP: the first flow went to a task on another
# node: out of the ingress overlay's VXLAN device, encapsulated to that
# node's address on the uplink, and the reply back the same way.
trace_remote() {
	local name=$1 svc=$2 bip=$3 f="($FLOW0)" host ovl vx r
	host=$(task_host "$svc" ingress "$bip")
	[[ -n $host && $host != "$MT_NODE_IP" ]] || fail "backend $bip has no task here, and the network DB puts it on '$host'"
	ovl=$(overlay_netns ingress)
	vx=$(vxlan_dev "$ovl")
	r="$f.rewrites[] | select"
	want "backend netns" "$(jqr "$name" "$f.backend.netns")" null
	want "backend vtep" "$(jqr "$name" "$f.backend.vtep")" "$host"
	want "backend task" "$(jqr "$name" "$f.backend.task")" "$(task_slot "$svc" ingress "$bip")"
	want "out of $ovl/$vx" "$(jqr "$name" "[$f.hops[] | select(.netns == \"$ovl\" and .ifname == \"$vx\" and .dir == \"out\")] | length > 0")" true
	want "encapsulated to $host:4789" \
		"$(jqr "$name" "[$f.hops[] | select(.netns == \"host\" and .dir == \"out\" and ((.encap // \"\") | test(\" -> $host:4789 \")))] | length > 0")" true
	want "reply decapsulated from $host" \
		"$(jqr "$name" "[$f.reply_hops[] | select(.netns == \"host\" and .dir == \"in\" and ((.encap // \"\") | test(\"^vxlan $host:\")))] | length > 0")" true
	want "reply into $ovl/$vx" "$(jqr "$name" "[$f.reply_hops[] | select(.netns == \"$ovl\" and .ifname == \"$vx\" and .dir == \"in\")] | length > 0")" true
	want "vxlan-encap rewrite" "$(jqr "$name" "[$r(.kind == \"vxlan-encap\" and .netns == \"$ovl\") | .to][0]")" "$host"
	want "vxlan-decap rewrite" "$(jqr "$name" "[$r(.kind == \"vxlan-decap\" and .netns == \"$ovl\") | .from][0]")" "$host"
}

# path_norm FILE: the parts of a path answer that must not depend on the source.
path_norm() {
	jq -S '{proto, port, complete,
		hops: [.hops[] | {netns, kind, to, mark, fwmark}],
		backends: ([.backends[] | {ip, netns, target_port}] | sort_by(.ip))}' "$1"
}

# check_bundle: a bundle written by hand with the shell (the documented layout)
# and one written by `meshtrace collect` give the live answer.
check_bundle() {
	mt path-live path --port 8080 -o json || fail "live path exited $?"
	BUNDLE=$OUT/bundle-shell
	record_netns host
	local ns
	for ns in $(docker_netns_names); do record_netns "$ns"; done
	record_docker
	mt path-shell path --from "$BUNDLE" --port 8080 -o json ||
		fail "path --from shell bundle exited $?: $(tail -1 "$OUT/path-shell.err")"
	diff <(path_norm "$OUT/path-live.out") <(path_norm "$OUT/path-shell.out") >"$OUT/bundle-shell.diff" ||
		fail "shell bundle differs from live (outputs/bundle-shell.diff)"
	mt collect collect "$OUT/bundle-collect" || fail "collect exited $?: $(tail -1 "$OUT/collect.err")"
	mt path-collect path --from "$OUT/bundle-collect" --port 8080 -o json ||
		fail "path --from collected bundle exited $?"
	diff <(path_norm "$OUT/path-live.out") <(path_norm "$OUT/path-collect.out") >"$OUT/bundle-collect.diff" ||
		fail "collected bundle differs from live (outputs/bundle-collect.diff)"
}

# host_state: what `mesh down` must restore exactly.
host_state() {
	ip netns list | awk '{print $1}' | sort
	ip -o link | awk -F': ' '{print $2}' | sort
	iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
	ls /run/docker/netns
}

# check_mesh: the built-in mesh on a kernel with real IPVS.
check_mesh() {
	host_state >"$OUT/mesh-before.txt"
	mt mesh-up mesh up --lb ipvs || fail "mesh up exited $?: $(tail -1 "$OUT/mesh-up.err")"
	# mesh down must run whatever the checks say: run them in a subshell of
	# their own with -e, outside any condition (which would disable -e).
	local rc
	set +e
	(
		set -e
		mesh_checks
	)
	rc=$?
	set -e
	mt mesh-down mesh down || fail "mesh down exited $?: $(tail -1 "$OUT/mesh-down.err")"
	host_state >"$OUT/mesh-after.txt"
	((rc == 0)) || fail "mesh checks failed (see above)"
	diff "$OUT/mesh-before.txt" "$OUT/mesh-after.txt" >"$OUT/mesh-leftover.diff" ||
		fail "mesh down left things behind (outputs/mesh-leftover.diff)"
}

mesh_checks() {
	local ip tasks answered body i n sbox fw
	mt mesh-status mesh status -o json || fail "mesh status exited $?"
	want "mesh lb" "$(jqr mesh-status .lb)" ipvs
	tasks=$(jqr mesh-status '.services[] | select(.name == "web") | .tasks[].name' | sort)
	[[ $(wc -w <<<"$tasks") -ge 2 ]] || fail "mesh has fewer than 2 web tasks: $tasks"
	answered=""
	n=0
	for ip in $(jqr mesh-status '.nodes[].ip'); do
		for ((i = 0; i < 10; i++)); do
			body=$(timeout 20 meshtrace mesh exec client -- timeout 5 busybox wget -q -O- "http://$ip:8080/" | head -1) ||
				fail "request $i to $ip:8080 was not answered"
			n=$((n + 1))
			answered+="$body "
		done
	done
	echo "$n requests answered by: $(xargs -n1 <<<"$answered" | sort | uniq -c | paste -sd' ')"
	want_set "tasks that answered" "$answered" "$tasks"
	# Real IPVS, asked of the kernel: the node's ingress sandbox (found through
	# inspect's netns paths) holds an FWM service whose real servers are the
	# task addresses mesh status reports.
	mt mesh-inspect inspect --mesh demo --node node0 -o json || fail "inspect --mesh exited $?"
	sbox=$(jqr mesh-inspect '[.namespaces[] | select(.role == "ingress-sandbox") | .path][0] // empty')
	[[ -n $sbox && -e $sbox ]] || fail "inspect --mesh names no ingress sandbox netns file ('$sbox')"
	nsenter --net="$sbox" ipvsadm-save -n >"$OUT/mesh-ipvsadm.txt"
	fw=$(awk '$1 == "-A" && $2 == "-f" {print $3; exit}' "$OUT/mesh-ipvsadm.txt")
	[[ -n $fw ]] || fail "no IPVS fwmark service in the mesh's ingress sandbox $sbox (lb ipvs)"
	want_set "IPVS real servers in $sbox" \
		"$(awk -v f="$fw" '$1 == "-a" && $3 == f {split($5, a, ":"); print a[1]}' "$OUT/mesh-ipvsadm.txt")" \
		"$(jqr mesh-status '.services[] | select(.name == "web") | .tasks[].ip')"
	mt mesh-path path --mesh demo --node node0 --port 8080 -o json || fail "path --mesh exited $?"
	want complete "$(jqr mesh-path .complete)" true
	want "ipvs impl" "$(jqr mesh-path '[.hops[] | select(.kind == "ipvs") | .impl // "ipvs"][0]')" ipvs
	want_set "mesh path backends" "$(jqr mesh-path '.backends[].ip')" \
		"$(jqr mesh-status '.services[] | select(.name == "web") | .tasks[].ip')"
	mesh_ipvs_faults "$(jqr mesh-status '.nodes[0].ip')"
}

# mesh_ipvs_faults NODE0_IP: the faults of `mesh break` that need kernel
# IPVS (CI's own kernel has none, so its fault matrix skips them): each
# must give exactly its doctor finding in the sandbox, live and from a
# collected bundle, reproduce its symptom (node0's port refuses), and
# `mesh repair` must bring the answers back with doctor clean again.
mesh_ipvs_faults() {
	local ip=$1 fault code name
	for fault in weight-zero:backends-weight-zero no-service:mark-no-service; do
		code=${fault#*:} fault=${fault%%:*} name=fault-$fault
		mt "$name-break" mesh break "$fault" --node node0 --service web ||
			fail "mesh break $fault exited $?: $(tail -1 "$OUT/$name-break.err")"
		mt "$name-doctor" doctor --mesh demo --node node0 --port 8080 -o json || true
		want "doctor on $fault" "$(doctor_serious "$name-doctor")" "$code ingress_sbox"
		mt "$name-collect" collect --mesh demo --node node0 "$OUT/$name-bundle" || fail "collect exited $?"
		mt "$name-offline" doctor --from "$OUT/$name-bundle" --port 8080 -o json || true
		want "doctor offline on $fault" "$(doctor_serious "$name-offline")" "$code ingress_sbox"
		if timeout 20 meshtrace mesh exec client -- timeout 5 busybox wget -q -O- "http://$ip:8080/" >"$OUT/$name-symptom.txt" 2>&1; then
			fail "$fault: $ip:8080 still answered: $(head -1 "$OUT/$name-symptom.txt")"
		fi
		mt "$name-repair" mesh repair || fail "mesh repair exited $?: $(tail -1 "$OUT/$name-repair.err")"
		timeout 20 meshtrace mesh exec client -- timeout 5 busybox wget -q -O- "http://$ip:8080/" >/dev/null ||
			fail "$fault: $ip:8080 not answered after repair"
		mt "$name-healed" doctor --mesh demo --node node0 --port 8080 -o json || true
		want "doctor after repairing $fault" "$(doctor_serious "$name-healed")" ""
	done
}

# check_doctor: nothing above info on a healthy node, exit status 0.
check_doctor() {
	local rc=0
	mt doctor doctor -o json || rc=$?
	[[ -s $OUT/doctor.out ]] || fail "meshtrace doctor exited $rc with no output: $(tail -1 "$OUT/doctor.err")"
	want "findings above info" "$(doctor_serious doctor)" ""
	want "doctor exit status" "$rc" 0
}

# doctor_serious NAME: doctor's findings above info, "code netns" each.
doctor_serious() {
	jqr "$1" '[.findings[] | select(.severity != "info") | "\(.code) \(.netns)"] | join(", ")'
}

# warm_published: a few requests to every published port, so that the
# ingress overlay's bridge knows every task's MAC again before a trace (it
# forgets them after 300 s without traffic, and then floods the next frame
# to every task: a case e2e/vm/check28.sh's trace-flooded covers on its own).
warm_published() {
	local proto port i
	while read -r proto port _; do
		for i in 1 2 3 4; do
			if [[ $proto == udp ]]; then
				udp_ask "$MT_NODE_IP" "$port" >/dev/null || true
			else
				http_get "$MT_NODE_IP:$port" >/dev/null || true
			fi
		done
	done < <(docker_published)
}

# checks_begin: what every run of the checks starts with.
checks_begin() {
	command -v meshtrace >/dev/null || fail "no meshtrace binary on PATH"
	meshtrace --version >"$OUT/version.txt" 2>&1 || true
	warm_traffic 1 >"$OUT/warm.log" 2>&1
}

main() {
	checks_begin
	check inspect check_inspect
	check docker-meta check_docker_meta
	check path-tcp-8080 check_path tcp 8080
	check path-tcp-8081 check_path tcp 8081
	check path-udp-5353 check_path udp 5353
	check path-unpublished check_unpublished
	check path-east-west check_east_west
	check bundle-vs-live check_bundle
	warm_published
	check trace-tcp-8080 check_trace tcp 8080
	check trace-udp-5353 check_trace udp 5353
	check trace-client-tcp-8080 check_trace_client tcp 8080
	check trace-client-udp-5353 check_trace_client udp 5353
	check mesh-ipvs check_mesh
	! grep -q '^FAIL' "$RESULTS"
}

# Sourced (by check2.sh) it only defines its harness and checks.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
