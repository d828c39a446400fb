package topology

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Docker's embedded DNS: every container on a user-defined network (every
// swarm task: ingress counts as one) resolves through 127.0.0.11:53, which
// dockerd DNATs in the container's namespace (nat OUTPUT -> DOCKER_OUTPUT)
// to the ports its resolver listens on there, and SNATs back
// (DOCKER_POSTROUTING). Source: moby daemon/container_operations.go
// (CreateOptionDisableResolution only for networks that are not user
// defined), libnetwork resolver_linux.go (setupIPTable).
var (
	// EmbeddedDNS is the address a task's resolv.conf names.
	EmbeddedDNS = netip.MustParseAddr("127.0.0.11")
	loopbackSrc = netip.MustParseAddr("127.0.0.1")
)

// The DNS walk's hop kinds and break codes.
const (
	// HopListener: the socket that takes the lookup in the task.
	HopListener HopKind = "listener"
	// HopAnswer: what Docker's metadata says the resolver answers.
	HopAnswer HopKind = "answer"

	BreakDNSRulesMissing Code = "dns-rules-missing" // nothing DNATs 127.0.0.11:53 to a resolver port
	BreakDNSNoListener   Code = "dns-no-listener"   // the DNAT leads to a port nothing listens on
)

// DNSQuery asks for the path of a name lookup from a task's namespace.
// Name "" walks to the resolver's listener only.
type DNSQuery struct {
	Name  string
	From  string
	Proto string // udp (the default) or tcp
}

// DNSPath is a lookup's path: 127.0.0.11:53, the DNAT to the task's
// resolver port, the filter on the way, the listener, and the answer.
type DNSPath struct {
	Name    string  `json:"name,omitempty"`
	From    string  `json:"from"`
	Proto   string  `json:"proto"`
	Verdict Verdict `json:"verdict"`
	// Resolver is where the DNAT sends the lookup (127.0.0.11:PORT).
	Resolver Endpoint `json:"resolver,omitzero"`
	Hops     []Hop    `json:"hops"`
	// Answer is what Docker's resolver answers for Name, from Docker's
	// metadata, with AnswerFrom saying which record; empty with
	// Forwarded set for a name the swarm does not know (the resolver
	// forwards it to the node's DNS servers).
	Answer     []netip.Addr `json:"answer,omitempty"`
	AnswerFrom string       `json:"answer_from,omitempty"`
	Forwarded  bool         `json:"forwarded,omitempty"`
	Notes      []string     `json:"notes,omitempty"`
}

// loopbackInHooks are the tables a packet a namespace sent to itself
// crosses on its way in through lo: its connection's NAT was done on the
// way out, so no nat table is asked again.
var loopbackInHooks = []hookChain{{"raw", "PREROUTING"}, {"mangle", "PREROUTING"}, {"mangle", "INPUT"}, {"filter", "INPUT"}}

// FindDNSPath walks a lookup of q.Name from the namespace q.From. Where
// what decides the next step was not collected the walk ends in an
// unknown hop saying so (the verdict is then unknown); a break says where
// and why the lookup fails.
func FindDNSPath(m *Model, q DNSQuery) (*DNSPath, error) {
	from := m.Lookup(q.From)
	if from == nil {
		return nil, fmt.Errorf("netns %q not found", q.From)
	}
	if q.Proto == "" {
		q.Proto = "udp"
	}
	if q.Proto != "udp" && q.Proto != "tcp" {
		return nil, fmt.Errorf("dns over %q: want udp or tcp", q.Proto)
	}
	p := &DNSPath{Name: strings.TrimSuffix(q.Name, "."), From: from.Name, Proto: q.Proto, Hops: []Hop{}}
	if p.walk(m, from) && q.Name != "" {
		p.answer(m, from)
	}
	p.settle()
	return p, nil
}

func (p *DNSPath) gap(ns *Namespace, reason string) bool {
	p.Hops = append(p.Hops, Hop{Netns: ns.Name, Kind: HopUnknown, Code: UnknownNotCollected, Reason: reason})
	return false
}

func (p *DNSPath) brk(ns *Namespace, code Code, reason string) bool {
	p.Hops = append(p.Hops, Hop{Netns: ns.Name, Kind: HopBreak, Code: code, Reason: reason})
	return false
}

// walk follows the lookup to the resolver's socket; false when it ends
// before (a break or an unknown hop).
func (p *DNSPath) walk(m *Model, from *Namespace) bool {
	if from.Firewall == nil {
		return p.gap(from, "its iptables-save was not collected: where a lookup of 127.0.0.11:53 leads cannot be told")
	}
	pkt := Packet{Proto: p.Proto, Src: loopbackSrc, SPort: clientPort, Dst: EmbeddedDNS, DPort: 53, OutIface: "lo"}
	steps, end := LocalOut(from, &pkt)
	dnat := false
	for _, st := range steps {
		if st.Decision.By != nil && (st.Decision.Verdict == ActDNAT || st.Decision.Verdict == ActRedirect) {
			dnat = true
			p.Hops = append(p.Hops, natHopOf(from, HopDNAT, st.Decision, &pkt))
		}
	}
	if end != nil {
		return p.ended(from, end, pkt)
	}
	if !dnat {
		if s := listener(from, p.Proto, EmbeddedDNS, 53); s != nil {
			p.Notes = append(p.Notes, fmt.Sprintf("nothing DNATs 127.0.0.11:53, but %s listens there itself (not Docker's resolver)", sockString(*s)))
		} else {
			why := fmt.Sprintf("nat OUTPUT does not DNAT %s to Docker's resolver: its DOCKER_OUTPUT rule for %s/53 is missing", pkt, p.Proto)
			if from.Sockets != nil {
				why += ", and nothing listens on 127.0.0.11:53 itself"
			}
			return p.brk(from, BreakDNSRulesMissing, why)
		}
	}
	p.Resolver = Endpoint{pkt.Dst, uint16(pkt.DPort)}
	pkt.InIface, pkt.OutIface = "lo", ""
	for _, h := range loopbackInHooks {
		d := Eval(from, h.table, h.chain, &pkt)
		if d.Verdict.Drops() || d.Verdict == EvalUnknown {
			return p.ended(from, &HookStep{h.table, h.chain, d}, pkt)
		}
	}
	if from.Sockets == nil {
		return p.gap(from, fmt.Sprintf("its listening sockets (ss) were not collected: whether the resolver listens on %s/%s cannot be told", p.Proto, p.Resolver))
	}
	s := listener(from, p.Proto, pkt.Dst, pkt.DPort)
	if s == nil {
		return p.brk(from, BreakDNSNoListener, fmt.Sprintf("the DNAT sends the lookup to %s/%s, where nothing listens in %s (its sockets on 127.0.0.11: %s): Docker's resolver for this task is gone", p.Proto, p.Resolver, from.Name, loopbackSockets(from)))
	}
	p.Hops = append(p.Hops, Hop{Netns: from.Name, Kind: HopListener, To: p.Resolver, Reason: fmt.Sprintf("Docker's embedded DNS server listens there (%s)", sockString(*s))})
	return true
}

// ended records where the hooks ended the lookup: a drop, or what could
// not be decided.
func (p *DNSPath) ended(ns *Namespace, end *HookStep, pkt Packet) bool {
	d := end.Decision
	if d.Verdict == EvalUnknown {
		if d.By != nil {
			p.Hops = append(p.Hops, ruleHop(ns, HopUnknown, *d.By, func(h *Hop) {
				h.Code = UnknownUndecidable
				h.Reason = fmt.Sprintf("%s %s: cannot tell whether %s matches %s: %s", d.By.Table, d.By.Chain, ruleRef(d.By.Rule), pkt, undecidedWhy(d.By.Rule))
			}))
			return false
		}
		return p.gap(ns, fmt.Sprintf("%s %s cannot be checked for %s: %s", end.Table, end.Chain, pkt, strings.Join(d.Notes, "; ")))
	}
	return p.brk(ns, BreakFilterDrop, fmt.Sprintf("%s %s %s %s", end.Table, end.Chain, dropBy(d), pkt))
}

func (p *DNSPath) settle() {
	p.Verdict = VerdictComplete
	for _, h := range p.Hops {
		switch h.Kind {
		case HopBreak:
			p.Verdict = VerdictBroken
			return
		case HopUnknown:
			p.Verdict = VerdictUnknown
		}
	}
}

// listener is the socket of ns listening on proto addr:port (or on every
// address).
func listener(ns *Namespace, proto string, addr netip.Addr, port int) *Socket {
	for i, s := range ns.Sockets {
		if s.Proto == proto && s.Port == port && (s.Addr == addr || !s.Addr.IsValid() || s.Addr.IsUnspecified()) {
			return &ns.Sockets[i]
		}
	}
	return nil
}

func sockString(s Socket) string {
	a := "*"
	if s.Addr.IsValid() && !s.Addr.IsUnspecified() {
		a = s.Addr.String()
	}
	return fmt.Sprintf("%s %s:%d", s.Proto, a, s.Port)
}

// loopbackSockets lists ns's sockets on 127.0.0.11, "none" when it has
// none.
func loopbackSockets(ns *Namespace) string {
	var out []string
	for _, s := range ns.Sockets {
		if s.Addr == EmbeddedDNS {
			out = append(out, sockString(s))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// answer is what Docker's resolver answers for the name, from Docker's
// metadata: the records of the networks the task is on (libnetwork's
// svcRecords): a service's name gives its VIP on that network (its tasks'
// addresses for --endpoint-mode dnsrr), tasks.NAME its tasks' addresses,
// a container's name its address. Anything else is forwarded to the
// node's DNS servers.
func (p *DNSPath) answer(m *Model, from *Namespace) {
	gap := func(why string) { p.gap(from, why) }
	d := m.Docker
	if d == nil {
		gap("Docker's metadata was not collected: what the resolver answers for " + p.Name + " cannot be told")
		return
	}
	var ctr *DockerContainer
	if from.Docker != nil && from.Docker.Container != "" {
		for i := range d.Containers {
			if d.Containers[i].Name == from.Docker.Container {
				ctr = &d.Containers[i]
			}
		}
	}
	if ctr == nil {
		gap(fmt.Sprintf("Docker's metadata names no container in %s: which networks its lookups resolve on cannot be told", from.Name))
		return
	}
	name := strings.ToLower(p.Name)
	svcName, tasksOf := name, strings.HasPrefix(name, "tasks.")
	if tasksOf {
		svcName = strings.TrimPrefix(name, "tasks.")
	}
	if d.Services == nil && !tasksOf {
		// The resolver answers a service's name first (its VIP, or its
		// tasks for dnsrr): without the services that cannot be told,
		// and a VIP service would read as dnsrr.
		gap("Docker's services were not collected (a worker lists none): whether " + p.Name + " is a service's name, and its VIP, cannot be told")
		return
	}
	var nets []*DockerNetwork
	var missing []string
	for _, nn := range sortedNames(ctr.Networks) {
		if n := d.network(nn); n != nil {
			nets = append(nets, n)
		} else {
			missing = append(missing, nn)
		}
	}
	if len(missing) > 0 {
		// The records are per network: one not collected may hold
		// the name, which is then no forwarded lookup.
		gap(fmt.Sprintf("Docker's network inspect of %s (a network of %s) was not collected: what the resolver answers for %s cannot be told", strings.Join(missing, ", "), ctr.Name, p.Name))
		return
	}
	for _, n := range nets {
		if svc := d.service(svcName); svc != nil {
			if vip, ok := svc.VIPs[n.ID]; ok && !tasksOf && svc.EndpointMode != "dnsrr" {
				p.found(from, []netip.Addr{vip.Addr()}, fmt.Sprintf("the VIP of service %s on network %s", svc.Name, n.Name))
				return
			}
		}
		if ips, note := n.taskIPs(d, svcName); len(ips) > 0 {
			what := fmt.Sprintf("the tasks of service %s on network %s", svcName, n.Name)
			if !tasksOf {
				what += " (endpoint mode dnsrr: no VIP)"
			}
			if note != "" {
				p.Notes = append(p.Notes, note)
			}
			p.found(from, ips, what)
			return
		}
		if !tasksOf {
			for _, c := range d.Containers {
				if a, ok := c.Networks[n.Name]; ok && strings.EqualFold(c.Name, name) {
					p.found(from, []netip.Addr{a}, fmt.Sprintf("container %s on network %s", c.Name, n.Name))
					return
				}
			}
		}
	}
	p.Forwarded = true
	p.AnswerFrom = fmt.Sprintf("no service, task or container of the networks of %s (%s) is called %s: the resolver forwards the lookup to the node's DNS servers", ctr.Name, strings.Join(sortedNames(ctr.Networks), ", "), p.Name)
	p.Hops = append(p.Hops, Hop{Netns: from.Name, Kind: HopAnswer, Reason: p.AnswerFrom})
}

func (p *DNSPath) found(from *Namespace, ips []netip.Addr, what string) {
	p.Answer, p.AnswerFrom = ips, what
	var s []string
	for _, a := range ips {
		s = append(s, a.String())
	}
	p.Hops = append(p.Hops, Hop{Netns: from.Name, Kind: HopAnswer, Reason: fmt.Sprintf("%s -> %s (%s)", p.Name, strings.Join(s, ", "), what)})
}

// network is the network named name (or with that ID).
func (d *DockerMeta) network(name string) *DockerNetwork {
	for i := range d.Networks {
		if d.Networks[i].Name == name || d.Networks[i].ID == name {
			return &d.Networks[i]
		}
	}
	return nil
}

// service is the service called name (case-insensitive), nil when none.
func (d *DockerMeta) service(name string) *DockerService {
	for i := range d.Services {
		if strings.EqualFold(d.Services[i].Name, name) {
			return &d.Services[i]
		}
	}
	return nil
}

// taskIPs are the addresses of service svc's tasks on n: every node's
// (`--verbose`), else this node's containers, with a note saying so.
func (n *DockerNetwork) taskIPs(d *DockerMeta, svc string) ([]netip.Addr, string) {
	var out []netip.Addr
	for _, t := range n.Tasks {
		if strings.EqualFold(t.Service, svc) {
			out = append(out, t.IP)
		}
	}
	if len(out) > 0 || len(n.Tasks) > 0 {
		return sortAddrs(out), ""
	}
	for _, c := range d.Containers {
		if a, ok := c.Networks[n.Name]; ok && strings.EqualFold(c.Service, svc) {
			out = append(out, a)
		}
	}
	return sortAddrs(out), fmt.Sprintf("network %s's tasks on other nodes are not known (`docker network inspect --verbose` was not collected): the answer lists this node's only", n.Name)
}

func sortAddrs(a []netip.Addr) []netip.Addr {
	sort.Slice(a, func(i, j int) bool { return a[i].Less(a[j]) })
	return a
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// EmbeddedDNSSetUp says whether Docker set up its embedded DNS in ns, and
// what shows it: its nat table holds Docker's DOCKER_OUTPUT chain or the
// jump for 127.0.0.11, its resolver listens on 127.0.0.11, or another
// sandbox of this node has the DNAT (dockerd sets the resolver up in every
// sandbox on a swarm network). "" when nothing does: a lookup that goes
// nowhere there is then no fault doctor can blame on Docker.
func EmbeddedDNSSetUp(m *Model, ns *Namespace) string {
	if nat := ns.firewallTable("nat"); nat != nil {
		if nat.Chain("DOCKER_OUTPUT") != nil {
			return "its nat table has Docker's DOCKER_OUTPUT chain"
		}
		for _, r := range nat.Chain("OUTPUT").rules() {
			if r.Dst != nil && !r.Dst.Neg && r.Dst.Net.IsSingleIP() && r.Dst.Net.Addr() == EmbeddedDNS {
				return "its nat OUTPUT still sends 127.0.0.11 to " + r.Target
			}
		}
	}
	if s := loopbackSockets(ns); s != "none" {
		return "Docker's resolver listens there (" + s + ")"
	}
	var others []string
	for _, o := range m.Namespaces {
		if o == ns || o.Firewall == nil {
			continue
		}
		pkt := Packet{Proto: "udp", Src: loopbackSrc, SPort: clientPort, Dst: EmbeddedDNS, DPort: 53, OutIface: "lo"}
		if d := Eval(o, "nat", "OUTPUT", &pkt); d.Verdict == ActDNAT {
			others = append(others, o.Name)
		}
	}
	switch n := len(others); {
	case n > 3:
		return fmt.Sprintf("dockerd set it up in %d other sandboxes of this node (%s, …)", n, strings.Join(others[:3], ", "))
	case n > 0:
		return fmt.Sprintf("dockerd set it up in the other sandboxes of this node (%s)", strings.Join(others, ", "))
	}
	return ""
}
