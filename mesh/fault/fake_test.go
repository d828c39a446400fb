package fault

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/mesh"
)

// The fakes of the kernel's concerns, in memory, each built from a plan's
// specs (what the mesh would have programmed). fakeMachine holds one of
// each and compares their state as a whole.

// fakeMachine is a mesh's kernel in memory.
type fakeMachine struct {
	fw     *fakeFirewall
	legacy *fakeFirewall
	sc     fakeSysctls
	links  fakeLinks
	rt     fakeRouting
	ovl    fakeOverlay
	neigh  fakeNeighs
	nic    fakeNIC
	lb     fakeBalancer
	flows  *fakeFlows
	tasks  *fakeTasks
}

func newFakeMachine(p *mesh.Plan) *fakeMachine {
	m := &fakeMachine{fw: &fakeFirewall{tables: map[string]map[string]*fakeTable{}},
		legacy: &fakeFirewall{tables: map[string]map[string]*fakeTable{}, create: true},
		sc:     fakeSysctls{}, links: fakeLinks{}, rt: fakeRouting{}, ovl: fakeOverlay{}, neigh: fakeNeighs{}, nic: fakeNIC{},
		lb: fakeBalancer{}, flows: &fakeFlows{conntr: map[string]int{}},
		tasks: &fakeTasks{modes: map[string]string{}, dns: map[string]string{}, tasks: map[string]bool{}}}
	for _, ns := range p.Netns() {
		m.fw.tables[ns.Path] = parseRestore(ns.Rules)
		m.legacy.tables[ns.Path] = map[string]*fakeTable{}
		rt := &fakeRoutes{addrs: map[string][]netip.Prefix{}}
		for _, a := range ns.Addrs {
			rt.addrs[a.Dev] = append(rt.addrs[a.Dev], a.Prefix)
			rt.routes = append(rt.routes, RouteOp{Dst: a.Prefix.Masked(), Dev: a.Dev, Src: a.Prefix.Addr()})
		}
		for _, r := range ns.Routes {
			rt.routes = append(rt.routes, RouteOp{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: r.Gateway, Dev: r.Dev})
		}
		m.rt[ns.Path] = rt
		m.neigh[ns.Path] = map[string]string{}
		for _, n := range ns.Neighs {
			m.neigh[ns.Path][n.Dev+" "+n.IP.String()] = n.MAC
		}
		m.nic[ns.Path] = map[string]string{}
		sc := map[string]string{"net/ipv4/ip_forward": "0"}
		links := map[string]LinkOp{"lo": {Name: "lo", MTU: 65536, GSOMaxSegs: 65535}}
		for _, v := range ns.Veths {
			mtu := v.MTU
			if mtu == 0 {
				mtu = 1500
			}
			links[v.Name] = LinkOp{Name: v.Name, MTU: mtu, GSOMaxSegs: 65535}
		}
		for name := range links {
			m.nic[ns.Path][name] = "tx on"
		}
		for name := range links {
			sc["net/ipv4/conf/"+name+"/forwarding"] = "0"
			sc["net/ipv4/conf/"+name+"/rp_filter"] = "0"
		}
		for _, s := range ns.Sysctls {
			sc[s.Key] = s.Value
			if s.Key == "net/ipv4/ip_forward" {
				for name := range links {
					sc["net/ipv4/conf/"+name+"/forwarding"] = s.Value
				}
			}
		}
		m.sc[ns.Path], m.links[ns.Path] = sc, links
		m.ovl[ns.Path] = append([]mesh.FDBSpec(nil), ns.FDB...)
		for _, s := range ns.IPVS {
			st := IPVSState{FWMark: s.FWMark, Scheduler: s.Scheduler}
			for _, d := range s.Dests {
				st.Dests = append(st.Dests, IPVSDestState{Addr: d.String(), Weight: 1})
			}
			m.lb[ns.Path] = append(m.lb[ns.Path], st)
		}
	}
	// The peer ends of veths: the LAN's ports of the nodes and client,
	// the bridges' ports.
	for _, ns := range p.Netns() {
		for _, v := range ns.Veths {
			m.nic[v.PeerPath][v.PeerName] = "tx on"
		}
	}
	for _, t := range p.Tasks() {
		m.tasks.tasks[t.Name] = true
	}
	return m
}

// kernel is the Kernel of the fakes.
func (m *fakeMachine) kernel() *Kernel {
	return &Kernel{Firewall: m.fw, Legacy: m.legacy, Sysctls: m.sc, Links: m.links, Routing: m.rt,
		Overlay: fakeOverlayNeighs{m.ovl, m.neigh}, NIC: m.nic, LB: m.lb,
		Conntrack: m.flows, Traffic: m.flows, Tasks: m.tasks}
}

// snapshot is everything a fault may change, for comparison.
func (m *fakeMachine) snapshot() string {
	var b strings.Builder
	for _, ns := range slices.Sorted(maps.Keys(m.fw.tables)) {
		for _, t := range slices.Sorted(maps.Keys(m.fw.tables[ns])) {
			s, _ := m.fw.SaveRules(ns, t)
			fmt.Fprintf(&b, "%s %s\n%s", ns, t, s)
		}
		// A legacy table once made stays (the kernel keeps it): only
		// its rules and policies count.
		for _, t := range slices.Sorted(maps.Keys(m.legacy.tables[ns])) {
			s, _ := m.legacy.SaveRules(ns, t)
			if strings.Contains(s, "-A ") || strings.Contains(s, " DROP ") {
				fmt.Fprintf(&b, "%s legacy %s\n%s", ns, t, s)
			}
		}
		rt := m.rt[ns]
		routes := slices.SortedFunc(slices.Values(rt.routes), func(a, b RouteOp) int { return strings.Compare(a.String(), b.String()) })
		fmt.Fprintf(&b, "addrs %v\nroutes %v\nneigh %v\nnic %v\n", rt.addrs, routes, m.neigh[ns], m.nic[ns])
		// An FDB is a hash table: its order means nothing.
		fdb := slices.SortedFunc(slices.Values(m.ovl[ns]), func(a, b mesh.FDBSpec) int { return strings.Compare(a.MAC, b.MAC) })
		// IPVS keeps services in a hash table by fwmark, real servers in a
		// list.
		svcs := slices.SortedFunc(slices.Values(m.lb[ns]), func(a, b IPVSState) int { return int(a.FWMark) - int(b.FWMark) })
		fmt.Fprintf(&b, "%v\n%v\n%v\n%v\n", m.sc[ns], m.links[ns], fdb, svcs)
	}
	fmt.Fprintf(&b, "modes %v dns %v\n", m.tasks.modes, m.tasks.dns)
	return b.String()
}

// fakeFirewall holds iptables tables as text. Rules are compared as text,
// which is stricter than iptables (it compares parsed rules).
type fakeFirewall struct {
	tables map[string]map[string]*fakeTable // netns -> table
	// create makes a table that does not exist yet on the first
	// restore into it (x_tables does), with its built-in chains.
	create bool
	// failRestore makes the nth RestoreRules call fail (1-based, 0: never).
	failRestore, restores int
}

var _ Firewall = (*fakeFirewall)(nil)

type fakeTable struct {
	order  []string
	chains map[string]*fakeChain
}

type fakeChain struct {
	policy string
	rules  []string
}

// parseRestore reads iptables-restore input (what dockerrules renders).
func parseRestore(in string) map[string]*fakeTable {
	out := map[string]*fakeTable{}
	var cur *fakeTable
	for _, l := range strings.Split(in, "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			cur = &fakeTable{chains: map[string]*fakeChain{}}
			out[l[1:]] = cur
		case strings.HasPrefix(l, ":"):
			f := strings.Fields(l[1:])
			cur.chains[f[0]] = &fakeChain{policy: f[1]}
			cur.order = append(cur.order, f[0])
		case strings.HasPrefix(l, "-A "):
			chain, spec, _ := strings.Cut(l[3:], " ")
			cur.chains[chain].rules = append(cur.chains[chain].rules, spec)
		}
	}
	return out
}

func (k *fakeFirewall) SaveRules(netns, table string) (string, error) {
	t := k.tables[netns][table]
	if t == nil {
		return "", nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by fake\n*%s\n", table)
	for _, c := range t.order {
		fmt.Fprintf(&b, ":%s %s [0:0]\n", c, t.chains[c].policy)
	}
	for _, c := range t.order {
		for _, r := range t.chains[c].rules {
			fmt.Fprintf(&b, "-A %s %s\n", c, r)
		}
	}
	b.WriteString("COMMIT\n")
	return b.String(), nil
}

// RestoreRules applies the lines to a copy and keeps it only when every
// line applied, as one transaction.
func (k *fakeFirewall) RestoreRules(netns, table string, lines []string) error {
	k.restores++
	if k.restores == k.failRestore {
		return fmt.Errorf("injected failure of restore %d", k.restores)
	}
	t := k.tables[netns][table]
	if t == nil && k.create && k.tables[netns] != nil {
		t = parseRestore("*" + table + "\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")[table]
	}
	if t == nil {
		return fmt.Errorf("%s: no table %s", netns, table)
	}
	cp := &fakeTable{order: slices.Clone(t.order), chains: map[string]*fakeChain{}}
	for n, c := range t.chains {
		cp.chains[n] = &fakeChain{policy: c.policy, rules: slices.Clone(c.rules)}
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if strings.HasPrefix(l, ":") {
			cp.chains[f[0][1:]].policy = f[1]
			continue
		}
		c := cp.chains[f[1]]
		if c == nil {
			return fmt.Errorf("line %q: no chain %s", l, f[1])
		}
		switch f[0] {
		case "-D":
			spec := strings.Join(f[2:], " ")
			i := slices.Index(c.rules, spec)
			if i < 0 {
				return fmt.Errorf("line %q: no such rule", l)
			}
			c.rules = slices.Delete(c.rules, i, i+1)
		case "-I":
			pos, err := strconv.Atoi(f[2])
			if err != nil || pos < 1 || pos > len(c.rules)+1 {
				return fmt.Errorf("line %q: bad position", l)
			}
			c.rules = slices.Insert(c.rules, pos-1, strings.Join(f[3:], " "))
		default:
			return fmt.Errorf("line %q: unsupported", l)
		}
	}
	k.tables[netns][table] = cp
	return nil
}

// fakeSysctls: netns -> key -> value.
type fakeSysctls map[string]map[string]string

var _ Sysctls = fakeSysctls{}

func (k fakeSysctls) Sysctl(netns, key string) (string, error) {
	v, ok := k[netns][key]
	if !ok {
		return "", fmt.Errorf("no sysctl %s in %s", key, netns)
	}
	return v, nil
}

func (k fakeSysctls) SysctlGlob(netns, pattern string) (map[string]string, error) {
	out := map[string]string{}
	for key, v := range k[netns] {
		if ok, _ := path.Match(pattern, key); ok {
			out[key] = v
		}
	}
	return out, nil
}

// SetSysctl: ip_forward sets every interface's forwarding, like the kernel.
func (k fakeSysctls) SetSysctl(netns, key, value string) error {
	sc := k[netns]
	if _, ok := sc[key]; !ok {
		return fmt.Errorf("no sysctl %s in %s", key, netns)
	}
	sc[key] = value
	if key == "net/ipv4/ip_forward" {
		for other := range sc {
			if strings.HasSuffix(other, "/forwarding") {
				sc[other] = value
			}
		}
	}
	return nil
}

// fakeLinks: netns -> link name -> MTU and GSO limit.
type fakeLinks map[string]map[string]LinkOp

var _ Links = fakeLinks{}

func (k fakeLinks) Link(netns, name string) (LinkOp, error) {
	l, ok := k[netns][name]
	if !ok {
		return l, fmt.Errorf("no link %s in %s", name, netns)
	}
	return l, nil
}

func (k fakeLinks) SetLink(netns string, l LinkOp) error {
	old, ok := k[netns][l.Name]
	if !ok {
		return fmt.Errorf("no link %s in %s", l.Name, netns)
	}
	if l.MTU > 0 {
		old.MTU = l.MTU
	}
	if l.GSOMaxSegs > 0 {
		old.GSOMaxSegs = l.GSOMaxSegs
	}
	k[netns][l.Name] = old
	return nil
}

// fakeOverlay: netns -> FDB entries.
type fakeOverlay map[string][]mesh.FDBSpec

func (k fakeOverlay) FDB(netns, dev string) ([]mesh.FDBSpec, error) {
	var out []mesh.FDBSpec
	for _, f := range k[netns] {
		if f.Dev == dev {
			out = append(out, f)
		}
	}
	return out, nil
}

func (k fakeOverlay) SetFDB(netns string, op FDBOp) error {
	i := slices.IndexFunc(k[netns], func(f mesh.FDBSpec) bool { return f.Dev == op.Dev && f.MAC == op.MAC && f.Dst == op.Dst })
	switch {
	case op.Delete && i < 0:
		return fmt.Errorf("no fdb entry %s", op.MAC)
	case op.Delete:
		k[netns] = slices.Delete(k[netns], i, i+1)
	case i >= 0:
		return fmt.Errorf("fdb entry %s exists", op.MAC)
	default:
		k[netns] = append(k[netns], mesh.FDBSpec{Dev: op.Dev, MAC: op.MAC, Dst: op.Dst})
	}
	return nil
}

// fakeRouting: netns -> addresses and routes.
type fakeRouting map[string]*fakeRoutes

type fakeRoutes struct {
	addrs  map[string][]netip.Prefix // dev -> addresses
	routes []RouteOp
}

var _ Routing = fakeRouting{}

func (k fakeRouting) Addrs(netns, dev string) ([]netip.Prefix, error) {
	rt := k[netns]
	if rt == nil {
		return nil, fmt.Errorf("no netns %s", netns)
	}
	return slices.Clone(rt.addrs[dev]), nil
}

func (k fakeRouting) SetAddr(netns string, op AddrOp) error {
	rt := k[netns]
	if rt == nil {
		return fmt.Errorf("no netns %s", netns)
	}
	i := slices.Index(rt.addrs[op.Dev], op.Prefix)
	switch {
	case op.Delete && i < 0:
		return fmt.Errorf("no address %s on %s", op.Prefix, op.Dev)
	case op.Delete:
		rt.addrs[op.Dev] = slices.Delete(rt.addrs[op.Dev], i, i+1)
		if len(rt.addrs[op.Dev]) == 0 {
			delete(rt.addrs, op.Dev)
		}
	case i >= 0:
		return fmt.Errorf("address %s exists on %s", op.Prefix, op.Dev)
	default:
		rt.addrs[op.Dev] = append(rt.addrs[op.Dev], op.Prefix)
	}
	return nil
}

func (k fakeRouting) Routes(netns string) ([]RouteOp, error) {
	rt := k[netns]
	if rt == nil {
		return nil, fmt.Errorf("no netns %s", netns)
	}
	return slices.Clone(rt.routes), nil
}

// SetRoute: a route is its destination (one per prefix, as in the
// kernel's main table without metrics); a preferred source must be an
// address of the namespace.
func (k fakeRouting) SetRoute(netns string, op RouteOp) error {
	rt := k[netns]
	if rt == nil {
		return fmt.Errorf("no netns %s", netns)
	}
	i := slices.IndexFunc(rt.routes, func(r RouteOp) bool { return r.Dst == op.Dst })
	switch {
	case op.Delete && i < 0:
		return fmt.Errorf("no route to %s", op.Dst)
	case op.Delete:
		rt.routes = slices.Delete(rt.routes, i, i+1)
	case i >= 0:
		return fmt.Errorf("route to %s exists", op.Dst)
	default:
		if op.Src.IsValid() && !slices.ContainsFunc(slices.Collect(maps.Values(rt.addrs)), func(ps []netip.Prefix) bool {
			return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Addr() == op.Src })
		}) {
			return fmt.Errorf("src %s is not an address of %s", op.Src, netns)
		}
		rt.routes = append(rt.routes, op)
	}
	return nil
}

// fakeNeighs: netns -> "dev ip" -> MAC of the permanent neighbours;
// learned entries are not modelled (Forget has nothing to forget).
type fakeNeighs map[string]map[string]string

// fakeOverlayNeighs is the Overlay of the fakes: FDB and neighbours.
type fakeOverlayNeighs struct {
	fakeOverlay
	neigh fakeNeighs
}

var _ Overlay = fakeOverlayNeighs{}

func (k fakeOverlayNeighs) Neigh(netns, dev string, ip netip.Addr) (string, error) {
	return k.neigh[netns][dev+" "+ip.String()], nil
}

func (k fakeOverlayNeighs) SetNeigh(netns string, op NeighOp) error {
	n := k.neigh[netns]
	if n == nil {
		return fmt.Errorf("no netns %s", netns)
	}
	if !op.Forget {
		if _, err := net.ParseMAC(op.MAC); err != nil {
			return err
		}
		n[op.Dev+" "+op.IP.String()] = op.MAC
	}
	return nil
}

// fakeNIC: netns -> link -> "tx on|off" and " clsact", " bad-checksum".
type fakeNIC map[string]map[string]string

var _ NIC = fakeNIC{}

func (k fakeNIC) link(netns, dev string) (string, error) {
	v, ok := k[netns][dev]
	if !ok {
		return "", fmt.Errorf("no link %s in %s", dev, netns)
	}
	return v, nil
}

func (k fakeNIC) TxChecksum(netns, dev string) (bool, error) {
	v, err := k.link(netns, dev)
	return strings.HasPrefix(v, "tx on"), err
}

func (k fakeNIC) SetTxChecksum(netns, dev string, on bool) error {
	v, err := k.link(netns, dev)
	if err != nil {
		return err
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(v, "tx on"), "tx off")
	k[netns][dev] = map[bool]string{true: "tx on", false: "tx off"}[on] + rest
	return nil
}

func (k fakeNIC) Clsact(netns, dev string) (bool, error) {
	v, err := k.link(netns, dev)
	return strings.Contains(v, " clsact"), err
}

func (k fakeNIC) SetBadChecksum(netns, dev string, on bool) error {
	v, err := k.link(netns, dev)
	if err != nil {
		return err
	}
	has := strings.Contains(v, " clsact")
	switch {
	case on && has:
		return fmt.Errorf("%s has a clsact qdisc", dev)
	case !on && !has:
		return fmt.Errorf("%s has no clsact qdisc", dev)
	case on:
		k[netns][dev] = v + " clsact bad-checksum"
	default:
		k[netns][dev] = strings.TrimSuffix(v, " clsact bad-checksum")
	}
	return nil
}

// fakeBalancer: netns -> IPVS services.
type fakeBalancer map[string][]IPVSState

var _ Balancer = fakeBalancer{}

func (k fakeBalancer) IPVSServices(netns string) ([]IPVSState, error) {
	return slices.Clone(k[netns]), nil
}

func (k fakeBalancer) IPVS(netns string, op IPVSOp) error {
	svcs := k[netns]
	si := slices.IndexFunc(svcs, func(s IPVSState) bool { return s.FWMark == op.FWMark })
	if op.Op == IPVSAddService {
		if si >= 0 {
			return fmt.Errorf("service %d exists", op.FWMark)
		}
		k[netns] = append(svcs, IPVSState{FWMark: op.FWMark, Scheduler: op.Scheduler})
		return nil
	}
	if si < 0 {
		return fmt.Errorf("no service %d", op.FWMark)
	}
	s := &svcs[si]
	di := slices.IndexFunc(s.Dests, func(d IPVSDestState) bool { return d.Addr == op.Addr.String() })
	switch op.Op {
	case IPVSDelService:
		k[netns] = slices.Delete(svcs, si, si+1)
	case IPVSAddDest:
		if di >= 0 {
			return fmt.Errorf("dest %s exists", op.Addr)
		}
		s.Dests = append(slices.Clone(s.Dests), IPVSDestState{Addr: op.Addr.String(), Weight: op.Weight})
	case IPVSDelDest, IPVSSetWeight:
		if di < 0 {
			return fmt.Errorf("no dest %s", op.Addr)
		}
		s.Dests = slices.Clone(s.Dests)
		if op.Op == IPVSDelDest {
			s.Dests = slices.Delete(s.Dests, di, di+1)
		} else {
			s.Dests[di].Weight = op.Weight
		}
	default:
		return fmt.Errorf("unknown op %q", op.Op)
	}
	return nil
}

// fakeFlows is traffic and the conntrack entries it leaves: a datagram
// sent from a namespace leaves one there, answered by answer.
type fakeFlows struct {
	conntr map[string]int
	answer string
}

var (
	_ Conntrack = (*fakeFlows)(nil)
	_ Traffic   = (*fakeFlows)(nil)
)

func (k *fakeFlows) DeleteConntrack(netns, proto string, sport int) (int, error) {
	n := k.conntr[netns]
	delete(k.conntr, netns)
	return n, nil
}

func (k *fakeFlows) Send(netns, proto, addr string, sport int) (string, error) {
	if _, err := netip.ParseAddrPort(addr); err != nil || proto != "udp" {
		return "", fmt.Errorf("bad send %s %s", proto, addr)
	}
	k.conntr[netns]++
	return k.answer, nil
}

// fakeTasks is the agent's task servers and the tasks' DNS servers.
type fakeTasks struct {
	modes map[string]string // task -> mode (absent: serve)
	dns   map[string]string // task -> its DNS server's mode (absent: serve)
	tasks map[string]bool
	// failTask makes SetTaskMode of that task fail.
	failTask string
}

var _ Tasks = (*fakeTasks)(nil)

func (k *fakeTasks) SetTaskMode(task, mode string) (string, error) { return k.set(k.modes, task, mode) }

func (k *fakeTasks) SetResolverMode(task, mode string) (string, error) {
	return k.set(k.dns, task, mode)
}

func (k *fakeTasks) set(modes map[string]string, task, mode string) (string, error) {
	if !k.tasks[task] || task == k.failTask {
		return "", fmt.Errorf("no task %s", task)
	}
	prev := mesh.TaskServe
	if m, ok := modes[task]; ok {
		prev = m
	}
	if mode == mesh.TaskServe {
		delete(modes, task)
	} else {
		modes[task] = mode
	}
	return prev, nil
}
