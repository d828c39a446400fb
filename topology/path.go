package topology

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Hop kinds.
const (
	HopDNAT       = "dnat"
	HopMark       = "mark"
	HopRedirect   = "redirect"
	HopIPVS       = "ipvs"
	HopSNAT       = "snat"
	HopMasquerade = "masquerade"
	HopBreak      = "break"
)

// Hop is one step of a path that changes or decides where the packet goes.
type Hop struct {
	Netns     string `json:"netns"`
	Kind      string `json:"kind"`
	Table     string `json:"table,omitempty"`
	Chain     string `json:"chain,omitempty"`
	Rule      string `json:"rule,omitempty"`
	Line      int    `json:"line,omitempty"`
	Packets   uint64 `json:"packets,omitempty"`
	To        string `json:"to,omitempty"`
	Mark      uint32 `json:"mark,omitempty"`
	FWMark    uint32 `json:"fwmark,omitempty"`
	VIP       string `json:"vip,omitempty"`
	Scheduler string `json:"scheduler,omitempty"`
	Impl      string `json:"impl,omitempty"`
	ToPort    int    `json:"to_port,omitempty"`
	// Code and Reason say why a break hop broke.
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Backend is one real server of the path's load balancer.
type Backend struct {
	IP      string  `json:"ip"`
	Port    int     `json:"port"`
	Forward string  `json:"forward"`
	Weight  int     `json:"weight"`
	Netns   *string `json:"netns"`
	Remote  bool    `json:"remote"`
	// TargetPort is the port the task's server listens on, 0 when unknown.
	TargetPort int `json:"target_port,omitempty"`
	// Task and Service come from Docker metadata when known.
	Task    string `json:"task,omitempty"`
	Service string `json:"service,omitempty"`
	// Via is the overlay device the packet crosses to a remote backend and
	// VTEP the node it is sent to, when the overlay namespace says.
	Via  string `json:"via,omitempty"`
	VTEP string `json:"vtep,omitempty"`
	// In is the backend's interface that owns IP.
	In   string `json:"in,omitempty"`
	Hops []Hop  `json:"hops"`
}

// Path is the reconstructed path of a published port or service VIP.
type Path struct {
	Proto    string    `json:"proto"`
	Port     int       `json:"port"`
	VIP      string    `json:"vip,omitempty"`
	From     string    `json:"from,omitempty"` // east-west: the client netns
	Complete bool      `json:"complete"`
	Hops     []Hop     `json:"hops"`
	Backends []Backend `json:"backends"`
	Notes    []string  `json:"notes,omitempty"`
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
// concrete packet in netfilter hook order, across namespaces.
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
	if host.Firewall == nil {
		return nil, fmt.Errorf("netns host: firewall not collected: cannot tell whether %s/%d is published", q.Proto, q.Port)
	}
	p := &Path{Proto: q.Proto, Port: q.Port, Hops: []Hop{}, Backends: []Backend{}}
	pkt := Packet{Proto: q.Proto, Src: clientAddr, SPort: clientPort, Dst: nodeAddr(host), DPort: q.Port, InIface: externalIface(host)}

	// Host: PREROUTING (mangle, nat).
	w := walker{m: m, p: p}
	w.eval(host, "mangle", "PREROUTING", &pkt)
	d := w.eval(host, "nat", "PREROUTING", &pkt)
	if d.Verdict != "DNAT" {
		if ns := markedElsewhere(m, q); ns != nil {
			// The sandbox still marks the port: it was published and the
			// host lost its DNAT.
			w.brk(&host.Name, BreakDNATMissing, fmt.Sprintf("%s/%d is marked in %s but the host has no DNAT for it (DOCKER-INGRESS rule missing)", q.Proto, q.Port, ns.Name))
			return p, nil
		}
		return nil, &NotPublishedError{q.Proto, q.Port}
	}
	w.natHop(host, d, &pkt)
	next := w.forward(host, &pkt, nil)
	if next == nil {
		return p, nil
	}
	ok, lb := w.enterLocal(next, &pkt)
	if !ok {
		return p, nil
	}
	w.balance(next, &pkt, lb)
	return p, nil
}

// walker accumulates hops while walking namespaces.
type walker struct {
	m *Model
	p *Path
	// from is the namespace the connection starts in (east-west), nil
	// for a published port's outside client.
	from *Namespace
}

func (w *walker) eval(ns *Namespace, table, chain string, pkt *Packet) Decision {
	e := evaluator{ns: ns, lb: true}
	d := e.run(table, chain, pkt)
	for _, st := range d.Marks {
		v, _ := MarkOf(st.Rule)
		w.p.Hops = append(w.p.Hops, ruleHop(ns, HopMark, st, func(h *Hop) { h.Mark = v }))
	}
	w.p.Notes = appendUnique(w.p.Notes, d.Notes...)
	return d
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

func ruleHop(ns *Namespace, kind string, st Step, f func(*Hop)) Hop {
	h := Hop{Netns: ns.Name, Kind: kind, Table: st.Table, Chain: st.Chain, Rule: st.Rule.Text, Line: st.Rule.Line, Packets: st.Rule.Packets}
	if f != nil {
		f(&h)
	}
	return h
}

// natHop records a DNAT/REDIRECT/SNAT/MASQUERADE decision.
func (w *walker) natHop(ns *Namespace, d Decision, pkt *Packet) {
	kind := map[string]string{"DNAT": HopDNAT, "REDIRECT": HopRedirect, "SNAT": HopSNAT, "MASQUERADE": HopMasquerade}[d.Verdict]
	w.p.Hops = append(w.p.Hops, natHopOf(ns, kind, d, pkt))
}

func natHopOf(ns *Namespace, kind string, d Decision, pkt *Packet) Hop {
	return ruleHop(ns, kind, *d.By, func(h *Hop) {
		switch kind {
		case HopDNAT:
			h.To = netip.AddrPortFrom(pkt.Dst, uint16(pkt.DPort)).String()
		case HopRedirect:
			h.ToPort = pkt.DPort
		case HopSNAT, HopMasquerade:
			h.To = pkt.Src.String()
		}
	})
}

// Break codes say what kind of break a break hop is.
const (
	BreakDNATMissing     = "dnat-missing"     // the sandbox marks a port the host does not DNAT
	BreakUnowned         = "unowned"          // a rewrite leads to an address no namespace owns
	BreakFilterDrop      = "filter-drop"      // a filter rule or policy drops the packet
	BreakNoService       = "no-service"       // a mark (or VIP) without an LB service
	BreakMarkMissing     = "mark-missing"     // unmarked where only fwmark services balance
	BreakIPVSUnavailable = "ipvs-unavailable" // no IPVS in the kernel, and no emulation
	BreakNotCollected    = "not-collected"    // the IPVS table was not read
	BreakNoBackends      = "no-backends"      // an LB service without real servers
	BreakWeightZero      = "weight-zero"      // every real server has weight 0
	BreakSNATMissing     = "snat-missing"     // balanced and forwarded without SNAT
)

// brk ends the path with a break hop.
func (w *walker) brk(netns *string, code, reason string) {
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
	out := ns.RouteOut(pkt.Dst)
	if out != nil {
		pkt.OutIface = out.Name
	}
	if d := w.eval(ns, "filter", "FORWARD", pkt); d.Verdict == "DROP" || d.Verdict == "REJECT" {
		w.brk(&ns.Name, BreakFilterDrop, fmt.Sprintf("filter FORWARD %s %s (%s)", dropBy(d), pkt, ns.Name))
		return nil
	}
	w.postrouting(ns, pkt)
	next := w.owner(pkt.Dst, ns, exclude)
	if next == nil {
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
	if d.Verdict == "SNAT" || d.Verdict == "MASQUERADE" {
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
	w.eval(ns, "mangle", "PREROUTING", pkt)
	d := w.eval(ns, "nat", "PREROUTING", pkt)
	switch d.Verdict {
	case "LB":
		return true, emulatedBy(ns, d.By.Rule)
	case "DNAT", "REDIRECT":
		w.natHop(ns, d, pkt)
	}
	if !ns.IsLocal(pkt.Dst) {
		return true, nil
	}
	w.eval(ns, "mangle", "INPUT", pkt)
	if d := w.eval(ns, "filter", "INPUT", pkt); d.Verdict == "DROP" || d.Verdict == "REJECT" {
		w.brk(&ns.Name, BreakFilterDrop, fmt.Sprintf("filter INPUT %s %s", dropBy(d), pkt))
		return false, nil
	}
	return true, nil
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

// balance applies the namespace's load balancer to pkt and follows every
// backend: the emulated service that took it in nat, else the kernel's IPVS
// service at LOCAL_IN.
func (w *walker) balance(ns *Namespace, pkt *Packet, svc *IPVSService) {
	if svc == nil {
		svc = ns.kernelService(pkt)
	}
	if svc == nil {
		code, reason := w.noService(ns, pkt)
		w.brk(&ns.Name, code, reason)
		return
	}
	h := Hop{Netns: ns.Name, Kind: HopIPVS, FWMark: svc.FWMark, Scheduler: svc.Scheduler, Impl: svc.Impl}
	if svc.FWMark == 0 {
		h.VIP = netip.AddrPortFrom(svc.Addr, uint16(svc.Port)).String()
	}
	if len(svc.Rules) > 0 {
		h.Rule = svc.Rules[0]
	}
	w.p.Hops = append(w.p.Hops, h)
	if len(svc.Dests) == 0 {
		w.brk(&ns.Name, BreakNoBackends, fmt.Sprintf("%s has no real servers", svcName(svc)))
		return
	}
	allZero := true
	snats := make([]*Hop, len(svc.Dests))
	base := len(w.p.Backends)
	for i, d := range svc.Dests {
		allZero = allZero && d.Weight == 0 && !d.WeightUnknown
		bp := *pkt
		bp.Dst = d.Addr
		if d.Port != 0 {
			bp.DPort = d.Port
		}
		bp.IPVS, bp.DNATed = true, true
		if out := ns.RouteOut(bp.Dst); out != nil {
			bp.OutIface = out.Name
		}
		// IPVS masquerading sends the packet out through POSTROUTING.
		sub := walker{m: w.m, p: &Path{}}
		sub.eval(ns, "mangle", "POSTROUTING", &bp)
		if dd := sub.eval(ns, "nat", "POSTROUTING", &bp); dd.Verdict == "SNAT" || dd.Verdict == "MASQUERADE" {
			kind := HopSNAT
			if dd.Verdict == "MASQUERADE" {
				kind = HopMasquerade
			}
			hop := natHopOf(ns, kind, dd, &bp)
			snats[i] = &hop
		}
		w.p.Backends = append(w.p.Backends, w.backend(ns, d, bp))
	}
	// One SNAT for every backend is a shared hop; otherwise each backend
	// carries its own.
	shared, none := true, true
	for _, h := range snats {
		shared = shared && h != nil && h.Rule == snats[0].Rule && h.To == snats[0].To
		none = none && h == nil
	}
	switch {
	case shared:
		w.p.Hops = append(w.p.Hops, *snats[0])
	case !none:
		for i, h := range snats {
			if h != nil {
				b := &w.p.Backends[base+i]
				b.Hops = append([]Hop{*h}, b.Hops...)
			}
		}
	case ns != w.from:
		// Forwarded through this namespace, balanced, not SNATed: the
		// backends answer the client directly, around the balancer, whose
		// conntrack never sees the reply.
		w.brk(&ns.Name, BreakSNATMissing, fmt.Sprintf("%s: no SNAT/MASQUERADE in nat POSTROUTING for packets balanced to the backends: replies bypass %s and never reach the client", svcName(svc), ns.Name))
		return
	}
	if allZero {
		w.brk(&ns.Name, BreakWeightZero, fmt.Sprintf("%s: every real server has weight 0", svcName(svc)))
		return
	}
	w.p.Complete = true
	for _, b := range w.p.Backends {
		if hasBreak(b.Hops) {
			w.p.Complete = false
		}
	}
	w.fillRemoteTargets()
}

func svcName(s *IPVSService) string {
	if s.FWMark != 0 {
		return fmt.Sprintf("IPVS FWM %d", s.FWMark)
	}
	return fmt.Sprintf("IPVS %s %s:%d", s.Proto, s.Addr, s.Port)
}

func (w *walker) noService(ns *Namespace, pkt *Packet) (code, reason string) {
	what := fmt.Sprintf("no IPVS service for %s", pkt)
	if pkt.Mark == 0 {
		var marks []string
		for _, s := range ns.LBServices() {
			if s.FWMark != 0 {
				marks = append(marks, fmt.Sprint(s.FWMark))
			}
		}
		if len(marks) > 0 {
			return BreakMarkMissing, fmt.Sprintf("%s arrives unmarked: no MARK rule matches it, and %s balances only fwmark services (%s)", pkt, ns.Name, strings.Join(marks, ", "))
		}
	}
	if pkt.Mark != 0 {
		what = fmt.Sprintf("mark %#x (%d) set but no IPVS service for fwmark %d", pkt.Mark, pkt.Mark, pkt.Mark)
	}
	switch {
	case ns.IPVS == nil:
		return BreakNotCollected, what + " (IPVS table not collected)"
	case !ns.IPVS.Available:
		return BreakIPVSUnavailable, what + " (" + ns.IPVS.Reason + ")"
	}
	return BreakNoService, what
}

// backend follows one real server to the namespace that owns it.
func (w *walker) backend(lb *Namespace, d *IPVSDest, pkt Packet) Backend {
	b := Backend{IP: d.Addr.String(), Port: d.Port, Forward: d.Forward, Weight: d.Weight, Hops: []Hop{}}
	owner := w.owner(d.Addr, lb, nil)
	if owner == nil {
		b.Remote = true
		b.Via, b.VTEP = w.vtepFor(d.Addr)
		b.Task = w.endpointName(d.Addr)
		return b
	}
	name := owner.Name
	b.Netns = &name
	if owner.Docker != nil {
		b.Task, b.Service = owner.Docker.Task, owner.Docker.Service
	}
	if l, ok := owner.Owns(d.Addr); ok {
		b.In = l.Name
		pkt.InIface = l.Name
	}
	crossed(&pkt)
	sub := walker{m: w.m, p: &Path{}}
	ok, _ := sub.enterLocal(owner, &pkt)
	b.Hops = append(b.Hops, sub.p.Hops...)
	if ok {
		b.TargetPort = pkt.DPort
	}
	return b
}

// endpointName is the Docker endpoint (task) with address a on a swarm
// network, as `docker network inspect --verbose` lists remote tasks.
func (w *walker) endpointName(a netip.Addr) string {
	if w.m.Docker == nil {
		return ""
	}
	for _, n := range w.m.Docker.Networks {
		for name, ip := range n.Endpoints {
			if (ip == a.String() || strings.HasPrefix(ip, a.String()+"/")) && name != IngressSandboxEndpoint {
				return name
			}
		}
	}
	return ""
}

// vtepFor finds, in the overlay namespaces, the VXLAN device and the remote
// VTEP that carry traffic to a: the neighbour entry gives a's MAC, the FDB
// entry for that MAC gives the VTEP.
func (w *walker) vtepFor(a netip.Addr) (via, vtep string) {
	for _, ns := range w.m.Namespaces {
		if ns.Role != RoleOverlay {
			continue
		}
		for _, n := range ns.Neighbours {
			if n.IP != a.String() {
				continue
			}
			for _, f := range ns.FDB {
				if f.MAC == n.MAC && f.Dst != "" {
					return ns.Name + "/" + f.Dev, f.Dst
				}
			}
			return ns.Name + "/" + n.Dev, ""
		}
	}
	return "", ""
}

// fillRemoteTargets gives remote backends the target port the local
// backends of the same service redirect to, or Docker's when known.
func (w *walker) fillRemoteTargets() {
	target := 0
	for _, b := range w.p.Backends {
		if !b.Remote && b.TargetPort != 0 {
			target = b.TargetPort
			break
		}
	}
	if target == 0 {
		target = w.dockerTarget()
	}
	for i := range w.p.Backends {
		if w.p.Backends[i].Remote {
			w.p.Backends[i].TargetPort = target
		}
	}
}

func (w *walker) dockerTarget() int {
	if w.m.Docker == nil {
		return 0
	}
	for _, s := range w.m.Docker.Services {
		for _, pt := range s.Ports {
			if pt.Published == w.p.Port && pt.Proto == w.p.Proto {
				return pt.Target
			}
		}
	}
	return 0
}

// eastWest follows a service VIP from a task namespace: OUTPUT marks, the
// LB in the same namespace or in the namespace owning the VIP (lb_).
func eastWest(m *Model, q Query) (*Path, error) {
	from := m.Lookup(q.Netns)
	if from == nil {
		return nil, fmt.Errorf("netns %q not found", q.Netns)
	}
	p := &Path{Proto: q.Proto, Port: q.Port, VIP: q.VIP.String(), From: from.Name, Hops: []Hop{}, Backends: []Backend{}}
	port := q.Port
	if port == 0 {
		port = 80
		p.Notes = append(p.Notes, "no --port given: evaluated for port 80; fwmark services do not depend on it")
	}
	pkt := Packet{Proto: q.Proto, Dst: q.VIP, DPort: port, SPort: clientPort}
	if out := from.RouteOut(q.VIP); out != nil {
		pkt.OutIface = out.Name
		for _, a := range out.Addrs {
			if a.Addr().Is4() {
				pkt.Src = a.Addr()
				break
			}
		}
	}
	w := walker{m: m, p: p, from: from}
	w.eval(from, "mangle", "OUTPUT", &pkt)
	switch d := w.eval(from, "nat", "OUTPUT", &pkt); d.Verdict {
	case "LB":
		w.balance(from, &pkt, emulatedBy(from, d.By.Rule))
		return p, nil
	case "DNAT":
		w.natHop(from, d, &pkt)
	}
	if from.kernelService(&pkt) != nil {
		w.balance(from, &pkt, nil)
		return p, nil
	}
	if d := w.eval(from, "filter", "OUTPUT", &pkt); d.Verdict == "DROP" || d.Verdict == "REJECT" {
		w.brk(&from.Name, BreakFilterDrop, fmt.Sprintf("filter OUTPUT %s %s", dropBy(d), &pkt))
		return p, nil
	}
	w.postrouting(from, &pkt)
	next := w.owner(pkt.Dst, from, nil)
	if next == nil {
		w.brk(&from.Name, BreakNoService, fmt.Sprintf("no IPVS service for VIP %s in %s and no namespace on this node owns it", q.VIP, from.Name))
		return p, nil
	}
	if l, ok := next.Owns(pkt.Dst); ok {
		pkt.InIface = l.Name
	}
	crossed(&pkt)
	if next.Role == RoleTask && pkt.Mark == 0 && len(next.LBServices()) == 0 {
		// Not a VIP: the address of a task (--endpoint-mode dnsrr hands
		// these out). The call goes straight to it, unbalanced.
		p.Notes = append(p.Notes, fmt.Sprintf("%s is not a service VIP but the address of task %s: no load balancing (endpoint-mode dnsrr, or a task address used directly)", q.VIP, next.Name))
		d := &IPVSDest{Addr: q.VIP, Forward: "direct", Weight: 1}
		p.Backends = append(p.Backends, w.backend(from, d, pkt))
		p.Complete = !hasBreak(p.Backends[0].Hops)
		return p, nil
	}
	ok, lb := w.enterLocal(next, &pkt)
	if !ok {
		return p, nil
	}
	w.balance(next, &pkt, lb)
	return p, nil
}

func hasBreak(hs []Hop) bool {
	for _, h := range hs {
		if h.Kind == HopBreak {
			return true
		}
	}
	return false
}

// nodeAddr picks the address a client would use to reach the node: a global
// IPv4 address of a link that is neither a bridge nor a bridge port, else
// any, else 127.0.0.1.
func nodeAddr(host *Namespace) netip.Addr {
	var fallback netip.Addr
	for _, l := range host.Links {
		for _, a := range l.Addrs {
			if !a.Addr().Is4() || a.Addr().IsLoopback() {
				continue
			}
			if l.Kind != "bridge" && l.Master == "" {
				return a.Addr()
			}
			if !fallback.IsValid() {
				fallback = a.Addr()
			}
		}
	}
	if fallback.IsValid() {
		return fallback
	}
	return netip.MustParseAddr("127.0.0.1")
}

func externalIface(host *Namespace) string {
	a := nodeAddr(host)
	if l, ok := host.Owns(a); ok && !a.IsLoopback() {
		return l.Name
	}
	return "eth0"
}

// Published is one published port of the node as inspect reports it.
type Published struct {
	Proto    string   `json:"proto"`
	Port     int      `json:"port"`
	FWMark   uint32   `json:"fwmark,omitempty"`
	Backends []string `json:"backends"`
	Complete bool     `json:"complete"`
}

// PublishedPorts lists the ports the host DNATs (nat rules with a
// destination port and a DNAT target), each with its path's summary.
func PublishedPorts(m *Model) []Published {
	host := m.Lookup("host")
	nat := host.firewallTable("nat")
	if nat == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []Published
	for _, c := range nat.Chains {
		for _, r := range c.Rules {
			if r.Target != "DNAT" || r.Proto == nil {
				continue
			}
			port := 0
			for _, mm := range r.Matches {
				if o := mm.Opt("dport"); o != nil && !o.Neg {
					fmt.Sscanf(o.Arg(), "%d", &port)
				}
			}
			key := fmt.Sprintf("%s/%d", r.Proto.Value, port)
			if port == 0 || seen[key] {
				continue
			}
			seen[key] = true
			pub := Published{Proto: r.Proto.Value, Port: port, Backends: []string{}}
			if p, err := FindPath(m, Query{Proto: r.Proto.Value, Port: port}); err == nil {
				pub.Complete = p.Complete
				for _, h := range p.Hops {
					if h.Kind == HopIPVS {
						pub.FWMark = h.FWMark
					}
				}
				for _, b := range p.Backends {
					pub.Backends = append(pub.Backends, b.IP)
				}
			}
			out = append(out, pub)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Proto < out[j].Proto
	})
	return out
}

func (ns *Namespace) firewallTable(name string) *Table {
	if ns == nil {
		return nil
	}
	return ns.Firewall.Table(name)
}

// markedElsewhere finds a namespace whose mangle PREROUTING marks proto/port
// (the ingress sandbox's per-port MARK rule).
func markedElsewhere(m *Model, q Query) *Namespace {
	for _, ns := range m.Namespaces {
		if ns.Role == RoleHost {
			continue
		}
		c := ns.firewallTable("mangle").Chain("PREROUTING")
		if c == nil {
			continue
		}
		for _, r := range c.Rules {
			if r.Target != "MARK" || r.Proto == nil || !protoIs(r.Proto.Value, q.Proto) {
				continue
			}
			for _, mm := range r.Matches {
				if o := mm.Opt("dport"); o != nil && !o.Neg && portIn(o.Arg(), q.Port) {
					return ns
				}
			}
		}
	}
	return nil
}

// crossed resets what does not survive a move into another namespace: the
// kernel scrubs skb->mark when a veth hands a packet to another netns, and
// conntrack state is per namespace.
func crossed(pkt *Packet) {
	pkt.OutIface, pkt.DNATed, pkt.IPVS, pkt.Mark = "", false, false, 0
}
