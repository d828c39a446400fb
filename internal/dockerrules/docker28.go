package dockerrules

import (
	"fmt"
	"net/netip"
	"strings"
)

// Docker0 is the default bridge Docker 28 keeps beside docker_gwbridge.
const Docker0 = "docker0"

// Host28 returns the root namespace's raw, filter and nat tables as
// Docker 28.0.1 and later write them on a swarm node with docker0 and
// docker_gwbridge (the recorded 28.5.2 node, fixtures/swarm-vm28; moby
// integration/network/bridge/iptablesdoc): filter FORWARD jumps to
// DOCKER-USER and DOCKER-FORWARD, which starts with DOCKER-INGRESS, then
// DOCKER-CT, the isolation stages and DOCKER-BRIDGE, whose DOCKER drops
// what enters a bridge from outside it; raw PREROUTING drops packets for a
// bridge endpoint (endpoints: docker_gwbridge's, the ingress sandbox's
// first) that do not come from its bridge. Published ports DNAT to
// sandboxGW as before.
func Host28(gw string, gwSubnet, docker0 netip.Prefix, sandboxGW netip.Addr, endpoints []netip.Addr, ports []Port) string {
	var b strings.Builder
	b.WriteString("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	for _, ep := range endpoints {
		fmt.Fprintf(&b, "-A PREROUTING -d %s/32 ! -i %s -j DROP\n", ep, gw)
	}
	b.WriteString("COMMIT\n")
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n:DOCKER-BRIDGE - [0:0]\n:DOCKER-CT - [0:0]\n:DOCKER-FORWARD - [0:0]\n:DOCKER-INGRESS - [0:0]\n:DOCKER-ISOLATION-STAGE-1 - [0:0]\n:DOCKER-ISOLATION-STAGE-2 - [0:0]\n:DOCKER-USER - [0:0]\n")
	b.WriteString("-A FORWARD -j DOCKER-USER\n-A FORWARD -j DOCKER-FORWARD\n")
	writeBridgeDrops(&b, gw)
	for _, br := range []string{Docker0, gw} {
		fmt.Fprintf(&b, "-A DOCKER-BRIDGE -o %s -j DOCKER\n", br)
	}
	for _, br := range []string{Docker0, gw} {
		fmt.Fprintf(&b, "-A DOCKER-CT -o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n", br)
	}
	b.WriteString("-A DOCKER-FORWARD -j DOCKER-INGRESS\n-A DOCKER-FORWARD -j DOCKER-CT\n-A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1\n-A DOCKER-FORWARD -j DOCKER-BRIDGE\n")
	fmt.Fprintf(&b, "-A DOCKER-FORWARD -i %s -j ACCEPT\n-A DOCKER-FORWARD -i %s -o %s -j DROP\n-A DOCKER-FORWARD -i %s ! -o %s -j ACCEPT\n", Docker0, gw, gw, gw, gw)
	writeIngressAccepts(&b, ports)
	writeIsolation(&b, gw)
	b.WriteString("COMMIT\n")
	writeNAT28(&b, gw, gwSubnet, docker0, sandboxGW, ports)
	return b.String()
}

// Host2800 is Host28 as Docker 28.0.0 alone wrote it: no DOCKER-FORWARD,
// its bridge rules in FORWARD itself behind an ipset match of the bridges'
// subnets, and no raw rules. Restarted puts DOCKER-INGRESS's jump after the
// jump to DOCKER, as a daemon restart left it (the bridge driver inserts
// its rules again above it), so DOCKER's `! -i docker_gwbridge -o
// docker_gwbridge -j DROP` takes every published packet first: moby#49536
// (28.0.1 moved the bridge rules into DOCKER-FORWARD, moby#49518). Without
// Restarted it is the order of moby's iptablesdoc for 28.0.0.
func Host2800(gw string, gwSubnet, docker0 netip.Prefix, sandboxGW netip.Addr, ports []Port, restarted bool) string {
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n:DOCKER-INGRESS - [0:0]\n:DOCKER-ISOLATION-STAGE-1 - [0:0]\n:DOCKER-ISOLATION-STAGE-2 - [0:0]\n:DOCKER-USER - [0:0]\n")
	b.WriteString("-A FORWARD -j DOCKER-USER\n")
	if !restarted {
		b.WriteString("-A FORWARD -j DOCKER-INGRESS\n")
	}
	fmt.Fprintf(&b, "-A FORWARD -m set --match-set docker-ext-bridges-v4 dst -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -j DOCKER-ISOLATION-STAGE-1\n-A FORWARD -m set --match-set docker-ext-bridges-v4 dst -j DOCKER\n")
	fmt.Fprintf(&b, "-A FORWARD -i %s -j ACCEPT\n-A FORWARD -i %s -o %s -j DROP\n-A FORWARD -i %s ! -o %s -j ACCEPT\n", Docker0, gw, gw, gw, gw)
	if restarted {
		b.WriteString("-A FORWARD -j DOCKER-INGRESS\n")
	}
	writeBridgeDrops(&b, gw)
	writeIngressAccepts(&b, ports)
	writeIsolation(&b, gw)
	b.WriteString("-A DOCKER-USER -j RETURN\nCOMMIT\n")
	writeNAT28(&b, gw, gwSubnet, docker0, sandboxGW, ports)
	return b.String()
}

// writeBridgeDrops writes DOCKER's drop of what enters a bridge from
// outside it, for docker0 and gw.
func writeBridgeDrops(b *strings.Builder, gw string) {
	for _, br := range []string{Docker0, gw} {
		fmt.Fprintf(b, "-A DOCKER ! -i %s -o %s -j DROP\n", br, br)
	}
}

// writeIsolation writes the two isolation stages between docker0 and gw.
func writeIsolation(b *strings.Builder, gw string) {
	for _, br := range []string{Docker0, gw} {
		fmt.Fprintf(b, "-A DOCKER-ISOLATION-STAGE-1 -i %s ! -o %s -j DOCKER-ISOLATION-STAGE-2\n", br, br)
	}
	fmt.Fprintf(b, "-A DOCKER-ISOLATION-STAGE-2 -o %s -j DROP\n-A DOCKER-ISOLATION-STAGE-2 -o %s -j DROP\n", gw, Docker0)
}

// writeIngressAccepts writes DOCKER-INGRESS's accepts of the published
// ports (28 matches replies by conntrack state) and its RETURN.
func writeIngressAccepts(b *strings.Builder, ports []Port) {
	for i := len(ports) - 1; i >= 0; i-- {
		p := ports[i]
		fmt.Fprintf(b, "-A DOCKER-INGRESS -p %s -m %s --dport %d -j ACCEPT\n", p.Proto, p.Proto, p.Published)
		fmt.Fprintf(b, "-A DOCKER-INGRESS -p %s -m %s --sport %d -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n", p.Proto, p.Proto, p.Published)
	}
	b.WriteString("-A DOCKER-INGRESS -j RETURN\n")
}

// writeNAT28 writes Docker 28's nat table: DOCKER-INGRESS's DNATs, the
// bridges' DOCKER chain and MASQUERADEs.
func writeNAT28(b *strings.Builder, gw string, gwSubnet, docker0 netip.Prefix, sandboxGW netip.Addr, ports []Port) {
	b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n:DOCKER-INGRESS - [0:0]\n")
	b.WriteString("-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER-INGRESS\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n")
	b.WriteString("-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER-INGRESS\n-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER\n")
	fmt.Fprintf(b, "-A POSTROUTING -o %s -m addrtype --src-type LOCAL -j MASQUERADE\n", gw)
	fmt.Fprintf(b, "-A POSTROUTING -s %s ! -o %s -j MASQUERADE\n-A POSTROUTING -s %s ! -o %s -j MASQUERADE\n", gwSubnet.Masked(), gw, docker0.Masked(), Docker0)
	fmt.Fprintf(b, "-A DOCKER -i %s -j RETURN\n-A DOCKER -i %s -j RETURN\n", gw, Docker0)
	for _, p := range ports {
		fmt.Fprintf(b, "-A DOCKER-INGRESS -p %s -m %s --dport %d -j DNAT --to-destination %s:%d\n", p.Proto, p.Proto, p.Published, sandboxGW, p.Published)
	}
	b.WriteString("-A DOCKER-INGRESS -j RETURN\nCOMMIT\n")
}
