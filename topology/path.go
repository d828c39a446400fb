package topology

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
)

// Hop is one step of a path that changes or decides where the packet goes.
type Hop struct {
	// Netns is the name of the namespace of the model the hop happens in
	// (its NetnsRef.Name: Model.Lookup finds it).
	Netns   string  `json:"netns"`
	Kind    HopKind `json:"kind"`
	Table   string  `json:"table,omitempty"`
	Chain   string  `json:"chain,omitempty"`
	Rule    string  `json:"rule,omitempty"`
	Line    int     `json:"line,omitempty"`
	Packets uint64  `json:"packets,omitempty"`
	// To is where a DNAT sends the packet (address and port), the
	// address an SNAT or MASQUERADE gives it, or the VIP a route hop
	// reaches.
	To     Endpoint `json:"to,omitzero"`
	Mark   uint32   `json:"mark,omitempty"`
	FWMark uint32   `json:"fwmark,omitempty"`
	// VIP is the virtual service of an IPVS hop that is not an FWM
	// service.
	VIP       netip.AddrPort `json:"vip,omitzero"`
	Scheduler string         `json:"scheduler,omitempty"`
	Impl      LBImpl         `json:"impl,omitempty"`
	ToPort    int            `json:"to_port,omitempty"`
	// Dev is the interface a route hop leaves by.
	Dev string `json:"dev,omitempty"`
	// Code and Reason say why a break hop broke, or what an unknown
	// hop could not check.
	Code   Code   `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	// SPI is the ESP SA an esp hop sends through.
	SPI SPI `json:"spi,omitempty"`
}

// Backend is one real server of the path's load balancer.
type Backend struct {
	IP      netip.Addr `json:"ip"`
	Port    int        `json:"port"`
	Forward string     `json:"forward"`
	Weight  int        `json:"weight"`
	// Netns names the namespace of the model that owns IP; nil when
	// the backend is on another node.
	Netns  *string `json:"netns"`
	Remote bool    `json:"remote"`
	// TargetPort is the port the task's server listens on, 0 when unknown.
	TargetPort int `json:"target_port,omitempty"`
	// ServiceTarget is the service's target port when the task gets
	// another one (a wrong REDIRECT), 0 otherwise.
	ServiceTarget int `json:"service_target,omitempty"`
	// NotListening is set when the task's listening sockets were read
	// and none is on TargetPort: the packet arrives, nothing answers.
	NotListening bool `json:"not_listening,omitempty"`
	// Task and Service come from Docker metadata when known.
	Task    string `json:"task,omitempty"`
	Service string `json:"service,omitempty"`
	// Via is the overlay device the packet crosses to a remote backend and
	// VTEP the node it is sent to, when the overlay namespace says.
	// (Via is "NETNS/DEVICE".)
	Via  string     `json:"via,omitempty"`
	VTEP netip.Addr `json:"vtep,omitzero"`
	// Node is the node Docker says the remote task runs on; it should be
	// VTEP.
	Node netip.Addr `json:"node,omitzero"`
	// In is the backend's interface that owns IP.
	In   string `json:"in,omitempty"`
	Hops []Hop  `json:"hops"`
}

// Path is the reconstructed path of a published port or service VIP.
type Path struct {
	Proto    string     `json:"proto"`
	Port     int        `json:"port"`
	VIP      netip.Addr `json:"vip,omitzero"`
	From     string     `json:"from,omitempty"` // east-west: the client netns
	Complete bool       `json:"complete"`
	Verdict  Verdict    `json:"verdict"`
	Hops     []Hop      `json:"hops"`
	Backends []Backend  `json:"backends"`
	Notes    []string   `json:"notes,omitempty"`
}

// Query asks for the path of a published port (VIP unset) or of a service
// VIP seen from the namespace Netns (east-west).
type Query struct {
	Proto string
	Port  int
	VIP   netip.Addr
	Netns string
}

// NotPublishedError says the port is not published on this node.
type NotPublishedError struct {
	Proto string
	Port  int
}

func (e *NotPublishedError) Error() string {
	return fmt.Sprintf("%s/%d is not published on this node", e.Proto, e.Port)
}

// clientAddr stands for an outside client in path evaluation (TEST-NET-1).
var clientAddr = netip.MustParseAddr("192.0.2.1")

const clientPort = 40000

// FindPath reconstructs the path by evaluating the parsed rules for a
// concrete packet in netfilter hook order, across namespaces. What it could
// not check because it was not collected ends the path (or a backend's part
// of it) in an unknown hop, never in a break: Verdict is then unknown.
func FindPath(m *Model, q Query) (*Path, error) {
	if q.Proto == "" {
		q.Proto = "tcp"
	}
	if q.VIP.IsValid() {
		return eastWest(m, q)
	}
	host := m.Lookup("host")
	if host == nil {
		return nil, fmt.Errorf("model has no host namespace")
	}
	p := &Path{Proto: q.Proto, Port: q.Port, Hops: []Hop{}, Backends: []Backend{}}
	w := walker{m: m, p: p}
	if err := w.published(host, q); err != nil {
		return nil, err
	}
	return p.settle(), nil
}

// published walks a published port from the host to its backends.
func (w *walker) published(host *Namespace, q Query) error {
	if !w.needFirewall(host) {
		return nil
	}
	pkt := Packet{Proto: q.Proto, Src: clientAddr, SPort: clientPort, Dst: nodeAddr(host), DPort: q.Port, InIface: externalIface(host)}
	// Host: PREROUTING (raw, mangle, nat).
	if d := w.eval(host, "raw", "PREROUTING", &pkt); d.Verdict.Drops() {
		return w.rawDrop(host, d, pkt, q)
	}
	w.eval(host, "mangle", "PREROUTING", &pkt)
	d := w.eval(host, "nat", "PREROUTING", &pkt)
	if w.stopped {
		return nil
	}
	if d.Verdict != ActDNAT {
		if why := publishedElsewhere(w.m, q); why != "" {
			w.brk(&host.Name, BreakDNATMissing, fmt.Sprintf("%s/%d %s, but the host has no DNAT for it (DOCKER-INGRESS rule missing)", q.Proto, q.Port, why))
			return nil
		}
		return &NotPublishedError{q.Proto, q.Port}
	}
	w.natHop(host, d, &pkt)
	next := w.forward(host, &pkt, nil)
	if next == nil {
		return nil
	}
	ok, lb := w.enterLocal(next, &pkt)
	if !ok {
		return nil
	}
	w.balance(next, &pkt, lb)
	return nil
}

// walker accumulates hops while walking namespaces.
type walker struct {
	m *Model
	p *Path
	// from is the namespace the connection starts in (east-west), nil
	// for a published port's outside client.
	from *Namespace
	// stopped is set once a rule could not be decided (EvalUnknown): the
	// walk ends there with an unknown hop, and every later eval answers
	// EvalUnknown without evaluating.
	stopped bool
	// idx indexes what the model knows of other nodes (see remote).
	idx *remoteIndex
}

func (w *walker) eval(ns *Namespace, table, chain string, pkt *Packet) Decision {
	if w.stopped {
		return Decision{Verdict: EvalUnknown}
	}
	if ns.Firewall == nil && !w.gapIn(ns) {
		// Every namespace is checked when entered; a firewall not
		// collected is never read as "no rules".
		w.gap(ns, "its iptables-save was not collected")
	}
	e := evaluator{ns: ns, lb: true}
	d := e.run(table, chain, pkt)
	for _, st := range d.Marks {
		v, _ := MarkOf(st.Rule)
		w.p.Hops = append(w.p.Hops, ruleHop(ns, HopMark, st, func(h *Hop) { h.Mark = v }))
	}
	w.p.Notes = appendUnique(w.p.Notes, d.Notes...)
	if d.Verdict == EvalUnknown {
		w.undecided(ns, table, chain, d, pkt)
	}
	return d
}

// UnknownUndecidable is the code of an unknown hop at a rule that cannot be
// decided: a listing did not show it exactly (Rule.Undecidable).
const UnknownUndecidable Code = "undecidable"

// undecided ends the walk at what the evaluator could not decide: a rule
// (an undecidable unknown hop naming it), or a table not collected.
func (w *walker) undecided(ns *Namespace, table, chain string, d Decision, pkt *Packet) {
	w.stopped, w.p.Complete = true, false
	if d.By == nil {
		w.p.Hops = append(w.p.Hops, Hop{Netns: ns.Name, Kind: HopUnknown, Table: table, Chain: chain, Code: UnknownNotCollected,
			Reason: fmt.Sprintf("%s %s cannot be checked for %s: table %s was not collected", table, chain, pkt, table)})
		return
	}
	w.p.Hops = append(w.p.Hops, ruleHop(ns, HopUnknown, *d.By, func(h *Hop) {
		h.Code = UnknownUndecidable
		h.Reason = fmt.Sprintf("%s %s: cannot tell whether %s matches %s: %s", table, d.By.Chain, ruleRef(d.By.Rule), pkt, undecidedWhy(d.By.Rule))
	}))
}

func appendUnique(s []string, add ...string) []string {
	for _, a := range add {
		dup := false
		for _, x := range s {
			dup = dup || x == a
		}
		if !dup {
			s = append(s, a)
		}
	}
	return s
}

func ruleHop(ns *Namespace, kind HopKind, st Step, f func(*Hop)) Hop {
	h := Hop{Netns: ns.Name, Kind: kind, Table: st.Table, Chain: st.Chain, Rule: st.Rule.Text, Line: st.Rule.Line, Packets: st.Rule.Packets}
	if f != nil {
		f(&h)
	}
	return h
}

// natHop records a DNAT/REDIRECT/SNAT/MASQUERADE decision.
func (w *walker) natHop(ns *Namespace, d Decision, pkt *Packet) {
	kind := map[Action]HopKind{ActDNAT: HopDNAT, ActRedirect: HopRedirect, ActSNAT: HopSNAT, ActMasquerade: HopMasquerade}[d.Verdict]
	w.p.Hops = append(w.p.Hops, natHopOf(ns, kind, d, pkt))
}

func natHopOf(ns *Namespace, kind HopKind, d Decision, pkt *Packet) Hop {
	return ruleHop(ns, kind, *d.By, func(h *Hop) {
		switch kind {
		case HopDNAT:
			h.To = Endpoint{pkt.Dst, uint16(pkt.DPort)}
		case HopRedirect:
			h.ToPort = pkt.DPort
		case HopSNAT, HopMasquerade:
			h.To = Endpoint{Addr: pkt.Src}
		}
	})
}

// Break codes say what kind of break a break hop is.
const (
	BreakDNATMissing     Code = "dnat-missing"     // the sandbox marks a port the host does not DNAT
	BreakUnowned         Code = "unowned"          // a rewrite leads to an address no namespace owns
	BreakFilterDrop      Code = "filter-drop"      // a filter rule or policy drops the packet
	BreakNoService       Code = "no-service"       // a mark (or VIP) without an LB service
	BreakMarkMissing     Code = "mark-missing"     // unmarked where only fwmark services balance
	BreakIPVSUnavailable Code = "ipvs-unavailable" // no IPVS in the kernel, and no emulation
	BreakNoBackends      Code = "no-backends"      // an LB service without real servers
	BreakWeightZero      Code = "weight-zero"      // every real server has weight 0
	BreakSNATMissing     Code = "snat-missing"     // balanced and forwarded without SNAT
	BreakVIPUnreachable  Code = "vip-unreachable"  // the caller has no interface in the VIP's network
	BreakIngressShadowed Code = "ingress-shadowed" // a DROP takes a published packet before DOCKER-INGRESS accepts it
)

// UnknownNotCollected is the code of an unknown hop: what decides the next
// step was not collected.
const UnknownNotCollected Code = "not-collected"

// gap ends the walk where what decides the next step was not collected.
func (w *walker) gap(ns *Namespace, reason string) {
	w.p.Hops = append(w.p.Hops, Hop{Netns: ns.Name, Kind: HopUnknown, Code: UnknownNotCollected, Reason: reason})
	w.p.Complete = false
}

// needFirewall reports whether ns's firewall was collected, and records a
// gap when it was not: no rules read is not "no rules".
func (w *walker) needFirewall(ns *Namespace) bool {
	if ns.Firewall != nil {
		return true
	}
	w.gap(ns, "its iptables-save was not collected")
	return false
}

// needLinks is needFirewall for the links (routing, local addresses).
func (w *walker) needLinks(ns *Namespace) bool {
	if ns.Links != nil {
		return true
	}
	w.gap(ns, "its ip addr was not collected")
	return false
}

// unread names the namespaces (but skip) whose links were not collected:
// an address no read namespace owns may be theirs.
func (w *walker) unread(skip ...*Namespace) []string {
	var out []string
	for _, ns := range w.m.Namespaces {
		if ns.Links == nil && !slices.Contains(skip, ns) {
			out = append(out, ns.Name)
		}
	}
	return out
}

// ownerNotCollected says why a, which no namespace of the model owns, may
// still be owned on the node by a namespace that was not collected (""
// when it cannot be): the model's set of namespaces is not known to be
// whole (a hand-made bundle; a live read's is) and Docker's metadata
// names an endpoint with it, or Docker's networks, which would name it,
// were not collected either.
func (w *walker) ownerNotCollected(a netip.Addr) string {
	if w.m.NetnsComplete {
		return "" // every namespace of the node is here: none owns it
	}
	d := w.m.Docker
	if d != nil {
		for _, n := range d.Networks {
			for ep, addr := range n.Endpoints {
				if addr == a && endpointNetns(w.m, n, ep) == nil {
					return fmt.Sprintf("Docker's endpoint %s on %s has that address, and its namespace is not in what was collected", ep, n.Name)
				}
			}
		}
	}
	if d != nil && d.Networks != nil {
		return "" // Docker names no endpoint with it either
	}
	return "no namespace collected owns it, and what was collected does not say it holds every namespace of the node (a bundle without NAMESPACES.txt) nor names Docker's endpoints (docker network inspect): its owner may not have been collected"
}

// endpointNetns is the model's namespace of Docker's endpoint ep on n
// (nil when it is not in the model): the ingress sandbox (by its role:
// Docker 1.12 named it like a container), a network's lb_ namespace, or
// the container's sandbox.
func endpointNetns(m *Model, n DockerNetwork, ep string) *Namespace {
	switch {
	case ep == IngressSandboxEndpoint:
		for _, ns := range m.Namespaces {
			if ns.Role == RoleIngressSandbox || ns.Name == "ingress_sbox" {
				return ns
			}
		}
		return nil
	case strings.HasPrefix(ep, "lb-") && len(n.ID) >= 9:
		return m.Lookup("lb_" + n.ID[:9])
	}
	for _, c := range m.Docker.Containers {
		if (c.Name == ep || c.ID == ep) && c.SandboxKey != "" {
			return m.Lookup(path.Base(c.SandboxKey))
		}
	}
	for _, ns := range m.Namespaces {
		if ns.Docker != nil && ns.Docker.Container == ep {
			return ns
		}
	}
	return nil
}

// brk ends the path with a break hop.
func (w *walker) brk(netns *string, code Code, reason string) {
	h := Hop{Kind: HopBreak, Code: code, Reason: reason}
	if netns != nil {
		h.Netns = *netns
	}
	w.p.Hops = append(w.p.Hops, h)
	w.p.Complete = false
}

// forward routes a non-local packet out of ns (filter FORWARD, POSTROUTING)
// and returns the namespace that owns its destination, or nil after
// recording a break.
func (w *walker) forward(ns *Namespace, pkt *Packet, exclude *Namespace) *Namespace {
	if !w.needLinks(ns) {
		return nil
	}
	out := ns.RouteOut(pkt.Dst)
	if out != nil {
		pkt.OutIface = out.Name
	}
	if d := w.eval(ns, "filter", "FORWARD", pkt); d.Verdict.Drops() {
		why := fmt.Sprintf("filter FORWARD %s %s (%s)", dropBy(d), pkt, ns.Name)
		if acc := ingressWouldAccept(ns, d, *pkt); acc != "" {
			w.brk(&ns.Name, BreakIngressShadowed, why+"; "+acc)
			return nil
		}
		w.brk(&ns.Name, BreakFilterDrop, why)
		return nil
	}
	w.postrouting(ns, pkt)
	if w.stopped {
		return nil
	}
	next := w.owner(pkt.Dst, ns, exclude)
	if next == nil {
		if unread := w.unread(ns, exclude); len(unread) > 0 {
			w.gap(ns, fmt.Sprintf("%s leads to %s, which no namespace whose ip addr was read owns; the ip addr of %s was not collected", w.lastRewrite(), pkt.Dst, strings.Join(unread, ", ")))
			return nil
		}
		if why := w.ownerNotCollected(pkt.Dst); why != "" {
			w.gap(ns, fmt.Sprintf("%s leads to %s: %s", w.lastRewrite(), pkt.Dst, why))
			return nil
		}
		w.brk(&ns.Name, BreakUnowned, fmt.Sprintf("%s leads to %s, which no namespace on this node owns", w.lastRewrite(), pkt.Dst))
		return nil
	}
	pkt.InIface = ""
	if l, ok := next.Owns(pkt.Dst); ok {
		pkt.InIface = l.Name
	}
	if l := next.RouteOut(pkt.Src); l != nil && pkt.InIface == "" {
		pkt.InIface = l.Name
	}
	crossed(pkt)
	return next
}

func (w *walker) lastRewrite() string {
	for i := len(w.p.Hops) - 1; i >= 0; i-- {
		h := w.p.Hops[i]
		if h.Kind == HopDNAT || h.Kind == HopIPVS {
			return fmt.Sprintf("%s in %s", h.Kind, h.Netns)
		}
	}
	return "routing"
}

func dropBy(d Decision) string {
	if d.By != nil {
		return fmt.Sprintf("rule %q drops", d.By.Rule.Text)
	}
	return "policy " + d.Policy + " drops"
}

// postrouting runs mangle and nat POSTROUTING and records SNAT/MASQUERADE.
func (w *walker) postrouting(ns *Namespace, pkt *Packet) {
	w.eval(ns, "mangle", "POSTROUTING", pkt)
	d := w.eval(ns, "nat", "POSTROUTING", pkt)
	if d.Verdict.SourceNAT() {
		w.natHop(ns, d, pkt)
	}
}

// owner finds the namespace owning a, other than from and exclude.
func (w *walker) owner(a netip.Addr, from, exclude *Namespace) *Namespace {
	for _, ns := range w.m.Namespaces {
		if ns == from || ns == exclude || ns.Role == RoleHost {
			continue
		}
		if _, ok := ns.Owns(a); ok {
			return ns
		}
	}
	return nil
}

// enterLocal runs a packet arriving in ns through PREROUTING and, when its
// destination stays local, INPUT. It returns false after a break, and the
// emulated LB service when a rule of the iptables emulation took the packet
// in nat PREROUTING.
func (w *walker) enterLocal(ns *Namespace, pkt *Packet) (bool, *IPVSService) {
	if !w.needFirewall(ns) {
		return false, nil
	}
	w.eval(ns, "mangle", "PREROUTING", pkt)
	d := w.eval(ns, "nat", "PREROUTING", pkt)
	if w.stopped {
		return false, nil
	}
	switch d.Verdict {
	case ActLB:
		return true, emulatedBy(ns, d.By.Rule)
	case ActDNAT, ActRedirect:
		w.natHop(ns, d, pkt)
	}
	if !ns.IsLocal(pkt.Dst) {
		return true, nil
	}
	w.eval(ns, "mangle", "INPUT", pkt)
	if d := w.eval(ns, "filter", "INPUT", pkt); d.Verdict.Drops() {
		w.brk(&ns.Name, BreakFilterDrop, fmt.Sprintf("filter INPUT %s %s", dropBy(d), pkt))
		return false, nil
	}
	return !w.stopped, nil
}

// emulatedBy returns the emulated service a matching emulation rule belongs to.
func emulatedBy(ns *Namespace, r *Rule) *IPVSService {
	mark, _ := emulationRule(r)
	for _, s := range emulatedServices(ns) {
		if s.FWMark == mark {
			return s
		}
	}
	return nil
}

// kernelService returns the kernel IPVS service that takes pkt at LOCAL_IN:
// by fwmark, else by proto/VIP/port.
func (ns *Namespace) kernelService(pkt *Packet) *IPVSService {
	if ns.IPVS == nil {
		return nil
	}
	for _, s := range ns.IPVS.Services {
		if s.FWMark != 0 && pkt.Mark != 0 && s.FWMark == pkt.Mark {
			return s
		}
	}
	for _, s := range ns.IPVS.Services {
		if s.FWMark == 0 && s.Addr == pkt.Dst && s.Port == pkt.DPort && s.Proto == pkt.Proto {
			return s
		}
	}
	return nil
}
