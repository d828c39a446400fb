// Package dockerrules renders the iptables rules dockerd (libnetwork) writes
// for the Swarm routing mesh, as iptables-restore input, one function per
// namespace role. The mesh provisioner and the tests that build
// Docker-shaped namespaces both use it, so there is one copy of "what
// dockerd writes". Source: libnetwork service_linux.go (initIngressConfiguration,
// generateIngressRules, configureFWMark, addRedirectRules) and the iptables
// dumps in moby's integration/network/bridge/iptablesdoc.
package dockerrules

import (
	"fmt"
	"net/netip"
	"strings"
)

// Port is one published port of a service.
type Port struct {
	Proto     string // tcp or udp
	Published int
	Target    int
}

// Variant selects where dockerd put the rules.
type Variant int

const (
	// Modern is Docker 17.06 and later: VIP mark in mangle INPUT, REDIRECT
	// and the ingress filter in the task namespace.
	Modern Variant = iota
	// Docker112 is Docker 1.12: VIP mark in mangle OUTPUT, the REDIRECT
	// from published to target port in the ingress sandbox.
	Docker112
)

// Service is one service as seen from the ingress sandbox.
type Service struct {
	Name     string
	FWMark   uint32
	VIP      netip.Addr // the service's ingress VIP
	Ports    []Port
	Backends []netip.Addr // task addresses on the ingress network
}

// Host returns the root namespace's nat and filter tables for the published
// ports: DOCKER-INGRESS DNAT to the sandbox's gwbridge address, the
// addrtype jumps, the MASQUERADE rules and the filter accepts.
func Host(gwBridge string, gwSubnet netip.Prefix, sandboxGW netip.Addr, ports []Port) string {
	var b strings.Builder
	b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER-INGRESS - [0:0]\n")
	b.WriteString("-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER-INGRESS\n")
	b.WriteString("-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER-INGRESS\n")
	fmt.Fprintf(&b, "-A POSTROUTING -o %s -m addrtype --src-type LOCAL -j MASQUERADE\n", gwBridge)
	fmt.Fprintf(&b, "-A POSTROUTING -s %s ! -o %s -j MASQUERADE\n", gwSubnet.Masked(), gwBridge)
	for _, p := range ports {
		fmt.Fprintf(&b, "-A DOCKER-INGRESS -p %s -m %s --dport %d -j DNAT --to-destination %s:%d\n",
			p.Proto, p.Proto, p.Published, sandboxGW, p.Published)
	}
	b.WriteString("-A DOCKER-INGRESS -j RETURN\nCOMMIT\n")

	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER-INGRESS - [0:0]\n:DOCKER-USER - [0:0]\n")
	b.WriteString("-A FORWARD -j DOCKER-USER\n-A FORWARD -j DOCKER-INGRESS\n")
	fmt.Fprintf(&b, "-A FORWARD -i %s -o %s -j DROP\n", gwBridge, gwBridge)
	fmt.Fprintf(&b, "-A FORWARD -i %s ! -o %s -j ACCEPT\n", gwBridge, gwBridge)
	fmt.Fprintf(&b, "-A FORWARD -o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n", gwBridge)
	// generateIngressRules inserts (-I) each port's rules, so the last
	// port inserted comes first; per port the order is dport, then sport.
	for i := len(ports) - 1; i >= 0; i-- {
		p := ports[i]
		fmt.Fprintf(&b, "-A DOCKER-INGRESS -p %s -m %s --dport %d -j ACCEPT\n", p.Proto, p.Proto, p.Published)
		fmt.Fprintf(&b, "-A DOCKER-INGRESS -p %s -m %s --sport %d -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n", p.Proto, p.Proto, p.Published)
	}
	b.WriteString("-A DOCKER-INGRESS -j RETURN\n-A DOCKER-USER -j RETURN\nCOMMIT\n")
	return b.String()
}

// SandboxOpts says how to render the ingress sandbox's load balancing.
type SandboxOpts struct {
	Variant Variant
	// IPVSMatch renders dockerd's `-m ipvs --ipvs -j SNAT`. It can only be
	// loaded on a kernel with xt_ipvs.
	IPVSMatch bool
	// Emulate renders the load balancing itself as iptables rules (for
	// kernels without IPVS): per fwmark, nat PREROUTING/OUTPUT rules
	// `-m mark --mark M -m statistic --mode nth` DNAT to each backend in
	// round robin, and `-m conntrack --ctstate DNAT` in place of
	// `-m ipvs --ipvs` on the SNAT. IPVSMatch is ignored then.
	Emulate bool
}

// EmulationComment marks the rules of the iptables emulation of IPVS.
const EmulationComment = "meshtrace: emulates IPVS FWM"

// IngressSandbox returns the ingress sandbox's mangle and nat tables.
func IngressSandbox(ingressSubnet netip.Prefix, sboxIP netip.Addr, services []Service, o SandboxOpts) string {
	var b strings.Builder
	vipChain := "INPUT"
	if o.Variant == Docker112 {
		vipChain = "OUTPUT"
	}
	b.WriteString("*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	for _, s := range services {
		for _, p := range s.Ports {
			fmt.Fprintf(&b, "-A PREROUTING -p %s -m %s --dport %d -j MARK --set-xmark %#x/0xffffffff\n", p.Proto, p.Proto, p.Published, s.FWMark)
		}
	}
	for _, s := range services {
		if s.VIP.IsValid() {
			fmt.Fprintf(&b, "-A %s -d %s/32 -j MARK --set-xmark %#x/0xffffffff\n", vipChain, s.VIP, s.FWMark)
		}
	}
	b.WriteString("COMMIT\n")

	b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	if o.Variant == Docker112 {
		for _, s := range services {
			for _, p := range s.Ports {
				if p.Target != p.Published {
					fmt.Fprintf(&b, "-A PREROUTING -p %s -m %s --dport %d -j REDIRECT --to-ports %d\n", p.Proto, p.Proto, p.Published, p.Target)
				}
			}
		}
	}
	if o.Emulate {
		for _, s := range services {
			writeEmulation(&b, "PREROUTING", s)
			writeEmulation(&b, "OUTPUT", s)
		}
		fmt.Fprintf(&b, "-A POSTROUTING -d %s -m conntrack --ctstate DNAT -m comment --comment %q -j SNAT --to-source %s\n", ingressSubnet.Masked(), EmulationComment, sboxIP)
	} else if o.IPVSMatch {
		fmt.Fprintf(&b, "-A POSTROUTING -d %s -m ipvs --ipvs -j SNAT --to-source %s\n", ingressSubnet.Masked(), sboxIP)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// writeEmulation renders the emulation of s in chain.
func writeEmulation(b *strings.Builder, chain string, s Service) {
	for _, spec := range EmulationSpecs(s.FWMark, s.Backends) {
		fmt.Fprintf(b, "-A %s %s\n", chain, spec)
	}
}

// EmulationSpecs are the rules (without "-A CHAIN") of round robin over
// backends for packets marked mark: rule i matches every (n-i)th packet
// reaching it, the last one takes the rest, which is how `--mode nth`
// gives an even rotation. The nat table sees only a connection's first
// packet, so this balances connections, like IPVS.
func EmulationSpecs(mark uint32, backends []netip.Addr) []string {
	out := make([]string, 0, len(backends))
	for i, be := range backends {
		stat := ""
		if rest := len(backends) - i; rest > 1 {
			stat = fmt.Sprintf(" -m statistic --mode nth --every %d --packet 0", rest)
		}
		out = append(out, fmt.Sprintf("-m mark --mark %#x%s -m comment --comment %q -j DNAT --to-destination %s", mark, stat, EmulationComment, be))
	}
	return out
}

// Task returns a task namespace's nat and filter tables: the REDIRECT from
// published to target port on its ingress address and the ingress filter
// that admits only the target ports (Modern only; a Docker112 task has no
// rules of its own for the ingress network).
func Task(ingressIP netip.Addr, ports []Port, v Variant) string {
	return TaskDNS(ingressIP, ports, v, nil)
}

// TaskDNS is Task with, when dns is not nil, the embedded DNS server's
// rules in the nat table (see EmbeddedDNS). A task with no ports (a
// service that publishes none) gets its nat table only.
func TaskDNS(ingressIP netip.Addr, ports []Port, v Variant, dns *Resolver) string {
	var b strings.Builder
	b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	if dns != nil {
		b.WriteString(":" + ResolverOutputChain + " - [0:0]\n:" + ResolverPostroutingChain + " - [0:0]\n")
	}
	if v != Docker112 {
		for _, p := range ports {
			fmt.Fprintf(&b, "-A PREROUTING -d %s/32 -p %s -m %s --dport %d -j REDIRECT --to-ports %d\n", ingressIP, p.Proto, p.Proto, p.Published, p.Target)
		}
	}
	if dns != nil {
		for _, l := range dns.lines() {
			b.WriteString(l + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	if v == Docker112 || len(ports) == 0 {
		return b.String()
	}
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	// addRedirectRules inserts (-I) the accepts, so the last port is first.
	for i := len(ports) - 1; i >= 0; i-- {
		p := ports[i]
		fmt.Fprintf(&b, "-A INPUT -d %s/32 -p %s -m %s --dport %d -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT\n", ingressIP, p.Proto, p.Proto, p.Target)
	}
	for _, proto := range []string{"sctp", "udp", "tcp"} {
		fmt.Fprintf(&b, "-A INPUT -d %s/32 -p %s -j DROP\n", ingressIP, proto)
	}
	for i := len(ports) - 1; i >= 0; i-- {
		p := ports[i]
		fmt.Fprintf(&b, "-A OUTPUT -s %s/32 -p %s -m %s --sport %d -m conntrack --ctstate ESTABLISHED -j ACCEPT\n", ingressIP, p.Proto, p.Proto, p.Target)
	}
	for _, proto := range []string{"sctp", "udp", "tcp"} {
		fmt.Fprintf(&b, "-A OUTPUT -s %s/32 -p %s -j DROP\n", ingressIP, proto)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// EastWest returns the mangle rules that mark a service VIP in a task's (or
// lb_ netns's) OUTPUT chain for the east-west path, plus, when emulate is
// set, the nat OUTPUT DNAT emulation of its IPVS service.
func EastWest(services []Service, emulate bool) string {
	var b strings.Builder
	b.WriteString("*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	for _, s := range services {
		fmt.Fprintf(&b, "-A OUTPUT -d %s/32 -j MARK --set-xmark %#x/0xffffffff\n", s.VIP, s.FWMark)
	}
	b.WriteString("COMMIT\n")
	if emulate {
		b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
		for _, s := range services {
			writeEmulation(&b, "OUTPUT", s)
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// The embedded DNS server: dockerd's resolver listens at ResolverIP on a
// random UDP and a random TCP port inside each container's namespace, and
// DNATs ResolverIP:53 to them. Source: libnetwork resolver.go (SetupFunc:
// net.ListenUDP/ListenTCP on 127.0.0.11:0) and resolver_linux.go
// (setupIPTable), and a Docker 28 task's table (fixtures/swarm-vm2).
var ResolverIP = netip.MustParseAddr("127.0.0.11")

// Chains of the embedded DNS server's rules, as libnetwork names them.
const (
	ResolverOutputChain      = "DOCKER_OUTPUT"
	ResolverPostroutingChain = "DOCKER_POSTROUTING"
	// ResolverDNSPort is the port a container asks: ResolverIP:53.
	ResolverDNSPort = 53
)

// Resolver is one container's embedded DNS server: the ports it listens on
// at ResolverIP.
type Resolver struct {
	TCPPort int `json:"tcp"`
	UDPPort int `json:"udp"`
}

// Rules returns the resolver's nat rules, as iptables-save prints them:
// the jumps from OUTPUT and POSTROUTING, then per chain the DNAT (SNAT)
// rules. setupIPTable inserts (-I) the jumps, and the rules in the order
// udp DNAT, udp SNAT, tcp DNAT, tcp SNAT, so tcp comes first.
func (r Resolver) Rules() []string { return r.lines() }

// DNAT is the rule of ResolverOutputChain that sends proto's queries to
// the resolver's port.
func (r Resolver) DNAT(proto string) string {
	return fmt.Sprintf("-A %s -d %s/32 -p %s -m %s --dport %d -j DNAT --to-destination %s:%d",
		ResolverOutputChain, ResolverIP, proto, proto, ResolverDNSPort, ResolverIP, r.port(proto))
}

// SNAT is the rule of ResolverPostroutingChain that gives proto's
// answers the source port 53.
func (r Resolver) SNAT(proto string) string {
	return fmt.Sprintf("-A %s -s %s/32 -p %s -m %s --sport %d -j SNAT --to-source :%d",
		ResolverPostroutingChain, ResolverIP, proto, proto, r.port(proto), ResolverDNSPort)
}

func (r Resolver) port(proto string) int {
	if proto == "tcp" {
		return r.TCPPort
	}
	return r.UDPPort
}

func (r Resolver) lines() []string {
	return []string{
		fmt.Sprintf("-A OUTPUT -d %s/32 -j %s", ResolverIP, ResolverOutputChain),
		fmt.Sprintf("-A POSTROUTING -d %s/32 -j %s", ResolverIP, ResolverPostroutingChain),
		r.DNAT("tcp"), r.DNAT("udp"), r.SNAT("tcp"), r.SNAT("udp"),
	}
}

// EmbeddedDNS returns the nat table of a container whose only rules are
// its embedded DNS server's.
func EmbeddedDNS(r Resolver) string { return TaskDNS(netip.Addr{}, nil, Modern, &r) }
