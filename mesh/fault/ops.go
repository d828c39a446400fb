package fault

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Action is one change in one namespace of the mesh, as recorded in
// faults.json: exactly one of the operation fields is set.
type Action struct {
	// Netns is the namespace file ("" for the agent).
	Netns string `json:"netns,omitempty"`
	// Place names it for people: node0/ingress_sbox, client, agent.
	Place     string       `json:"place"`
	Rules     *RulesOp     `json:"rules,omitempty"`
	Sysctl    *SysctlOp    `json:"sysctl,omitempty"`
	Link      *LinkOp      `json:"link,omitempty"`
	Addr      *AddrOp      `json:"addr,omitempty"`
	Route     *RouteOp     `json:"route,omitempty"`
	FDB       *FDBOp       `json:"fdb,omitempty"`
	Neigh     *NeighOp     `json:"neigh,omitempty"`
	Offload   *OffloadOp   `json:"offload,omitempty"`
	Program   *ProgramOp   `json:"program,omitempty"`
	Task      *TaskOp      `json:"task,omitempty"`
	Conntrack *ConntrackOp `json:"conntrack,omitempty"`
	IPVS      *IPVSOp      `json:"ipvs,omitempty"`
	Send      *SendOp      `json:"send,omitempty"`
}

// An op is one kind of change: it applies itself through the kernel's
// concern it belongs to and says what it does for people.
type op interface {
	apply(k *Kernel, netns string) error
	describe(place string) string
}

// op returns the operation that is set (nil: none).
func (a Action) op() op {
	switch {
	case a.Rules != nil:
		return a.Rules
	case a.Sysctl != nil:
		return a.Sysctl
	case a.Link != nil:
		return a.Link
	case a.Addr != nil:
		return a.Addr
	case a.Route != nil:
		return a.Route
	case a.FDB != nil:
		return a.FDB
	case a.Neigh != nil:
		return a.Neigh
	case a.Offload != nil:
		return a.Offload
	case a.Program != nil:
		return a.Program
	case a.Task != nil:
		return a.Task
	case a.Conntrack != nil:
		return a.Conntrack
	case a.IPVS != nil:
		return a.IPVS
	case a.Send != nil:
		return a.Send
	}
	return nil
}

// apply performs the action.
func (a Action) apply(k *Kernel) error {
	if o := a.op(); o != nil {
		return o.apply(k, a.Netns)
	}
	return errors.New("empty action")
}

func (a Action) String() string {
	if o := a.op(); o != nil {
		return o.describe(a.Place)
	}
	return a.Place + ": nothing"
}

// RulesOp is iptables-restore --noflush input for one table (chain policy
// lines first, then -D/-I/-A lines), applied as one transaction.
type RulesOp struct {
	// Backend is BackendLegacy for the x_tables backend, "" for the
	// mesh's own (nf_tables).
	Backend string   `json:"backend,omitempty"`
	Table   string   `json:"table"`
	Lines   []string `json:"lines"`
}

// BackendLegacy is the legacy iptables backend (x_tables).
const BackendLegacy = "legacy"

func (o *RulesOp) apply(k *Kernel, netns string) error {
	if o.Backend == BackendLegacy {
		return k.Legacy.RestoreRules(netns, o.Table, o.Lines)
	}
	return k.Firewall.RestoreRules(netns, o.Table, o.Lines)
}

func (o *RulesOp) describe(place string) string {
	cmd := "iptables"
	if o.Backend == BackendLegacy {
		cmd = "iptables-legacy"
	}
	return fmt.Sprintf("%s: %s -t %s: %s", place, cmd, o.Table, strings.Join(o.Lines, "; "))
}

// SysctlOp writes /proc/sys/KEY (slash-separated, net/ipv4/ip_forward).
type SysctlOp struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (o *SysctlOp) apply(k *Kernel, netns string) error {
	return k.Sysctls.SetSysctl(netns, o.Key, o.Value)
}

func (o *SysctlOp) describe(place string) string {
	return fmt.Sprintf("%s: sysctl %s=%s", place, strings.ReplaceAll(o.Key, "/", "."), o.Value)
}

// LinkOp sets a link's MTU and GSO segment limit (0: leave alone).
type LinkOp struct {
	Name       string `json:"name"`
	MTU        int    `json:"mtu,omitempty"`
	GSOMaxSegs int    `json:"gso_max_segs,omitempty"`
}

func (o *LinkOp) apply(k *Kernel, netns string) error { return k.Links.SetLink(netns, *o) }

func (o *LinkOp) describe(place string) string {
	return fmt.Sprintf("%s: ip link set %s mtu %d gso_max_segs %d", place, o.Name, o.MTU, o.GSOMaxSegs)
}

// AddrOp adds or deletes an address of a link.
type AddrOp struct {
	Dev    string       `json:"dev"`
	Prefix netip.Prefix `json:"prefix"`
	Delete bool         `json:"delete,omitempty"`
}

func (o *AddrOp) apply(k *Kernel, netns string) error { return k.Routing.SetAddr(netns, *o) }

// inverse deletes what o adds, adds what it deletes.
func (o *AddrOp) inverse() *AddrOp { inv := *o; inv.Delete = !o.Delete; return &inv }

func (o *AddrOp) describe(place string) string {
	return fmt.Sprintf("%s: ip addr %s %s dev %s", place, addOrDel(o.Delete), o.Prefix, o.Dev)
}

// RouteOp adds or deletes a route of the main table: to Dst through Gw
// (none: on the link) on Dev, preferring source Src (none: the kernel's
// choice).
type RouteOp struct {
	Dst    netip.Prefix `json:"dst"`
	Gw     netip.Addr   `json:"gw,omitzero"`
	Dev    string       `json:"dev"`
	Src    netip.Addr   `json:"src,omitzero"`
	Delete bool         `json:"delete,omitempty"`
}

func (o *RouteOp) apply(k *Kernel, netns string) error { return k.Routing.SetRoute(netns, *o) }

// inverse deletes what o adds, adds what it deletes.
func (o *RouteOp) inverse() *RouteOp { inv := *o; inv.Delete = !o.Delete; return &inv }

func (o *RouteOp) describe(place string) string { return place + ": ip route " + o.String() }

// String is the route as `ip route` takes it.
func (o RouteOp) String() string {
	s := addOrDel(o.Delete) + " " + o.Dst.String()
	if o.Gw.IsValid() {
		s += " via " + o.Gw.String()
	}
	s += " dev " + o.Dev
	if o.Src.IsValid() {
		s += " src " + o.Src.String()
	}
	return s
}

func addOrDel(del bool) string {
	if del {
		return "del"
	}
	return "add"
}

// NeighOp replaces a permanent IPv4 neighbour (IP is at MAC), or with
// Forget deletes the entry the namespace learned for IP, if it has one (a
// cache entry: nothing puts it back, traffic learns it again).
type NeighOp struct {
	Dev    string     `json:"dev"`
	IP     netip.Addr `json:"ip"`
	MAC    string     `json:"mac,omitempty"`
	Forget bool       `json:"forget,omitempty"`
}

func (o *NeighOp) apply(k *Kernel, netns string) error { return k.Overlay.SetNeigh(netns, *o) }

func (o *NeighOp) describe(place string) string {
	if o.Forget {
		return fmt.Sprintf("%s: ip neigh del %s dev %s (the learned entry, if any)", place, o.IP, o.Dev)
	}
	return fmt.Sprintf("%s: ip neigh replace %s lladdr %s dev %s nud permanent", place, o.IP, o.MAC, o.Dev)
}

// OffloadOp turns a link's TX checksum offload on or off.
type OffloadOp struct {
	Dev        string `json:"dev"`
	TxChecksum bool   `json:"tx_checksum"`
}

func (o *OffloadOp) apply(k *Kernel, netns string) error {
	return k.NIC.SetTxChecksum(netns, o.Dev, o.TxChecksum)
}

func (o *OffloadOp) describe(place string) string {
	return fmt.Sprintf("%s: ethtool -K %s tx-checksum-ip-generic %s", place, o.Dev, map[bool]string{true: "on", false: "off"}[o.TxChecksum])
}

// ProgramOp attaches a tc program to a link's ingress, in a clsact qdisc
// of its own, or (Detach) removes that qdisc with the program.
type ProgramOp struct {
	Dev     string `json:"dev"`
	Program string `json:"program"` // ProgramBadChecksum
	Detach  bool   `json:"detach,omitempty"`
}

// ProgramBadChecksum corrupts the inner TCP/UDP checksum of VXLAN frames.
const ProgramBadChecksum = "bad-checksum"

func (o *ProgramOp) apply(k *Kernel, netns string) error {
	if o.Program != ProgramBadChecksum {
		return fmt.Errorf("unknown program %q", o.Program)
	}
	return k.NIC.SetBadChecksum(netns, o.Dev, !o.Detach)
}

func (o *ProgramOp) describe(place string) string {
	if o.Detach {
		return fmt.Sprintf("%s: tc qdisc del dev %s clsact (and the %s program with it)", place, o.Dev, o.Program)
	}
	return fmt.Sprintf("%s: tc qdisc add dev %s clsact; tc filter add dev %s ingress bpf direct-action (%s: the inner L4 checksum of VXLAN frames)", place, o.Dev, o.Dev, o.Program)
}

// FDBOp adds or deletes a permanent FDB entry of a VXLAN device.
type FDBOp struct {
	Dev    string     `json:"dev"`
	MAC    string     `json:"mac"`
	Dst    netip.Addr `json:"dst"`
	Delete bool       `json:"delete,omitempty"`
}

func (o *FDBOp) apply(k *Kernel, netns string) error { return k.Overlay.SetFDB(netns, *o) }

func (o *FDBOp) describe(place string) string {
	verb := "append"
	if o.Delete {
		verb = "del"
	}
	return fmt.Sprintf("%s: bridge fdb %s %s dev %s dst %s self permanent", place, verb, o.MAC, o.Dev, o.Dst)
}

// TaskOp puts a task's server (or, with Server ServerDNS, its embedded
// DNS server) in a mode (mesh.TaskServe, ...).
type TaskOp struct {
	Task   string `json:"task"`
	Server string `json:"server,omitempty"`
	Mode   string `json:"mode"`
}

// ServerDNS is a task's embedded DNS server.
const ServerDNS = "dns"

func (o *TaskOp) apply(k *Kernel, _ string) error {
	var err error
	if o.Server == ServerDNS {
		_, err = k.Tasks.SetResolverMode(o.Task, o.Mode)
	} else {
		_, err = k.Tasks.SetTaskMode(o.Task, o.Mode)
	}
	return err
}

func (o *TaskOp) describe(string) string {
	if o.Server == ServerDNS {
		return fmt.Sprintf("agent: task %s's embedded DNS server %s", o.Task, o.Mode)
	}
	return fmt.Sprintf("agent: task %s %s", o.Task, o.Mode)
}

// ConntrackOp deletes the conntrack entries of Proto whose original
// source port is SPort.
type ConntrackOp struct {
	Proto string `json:"proto"`
	SPort int    `json:"sport"`
}

func (o *ConntrackOp) apply(k *Kernel, netns string) error {
	_, err := k.Conntrack.DeleteConntrack(netns, o.Proto, o.SPort)
	return err
}

func (o *ConntrackOp) describe(place string) string {
	return fmt.Sprintf("%s: conntrack -D -p %s --orig-port-src %d", place, o.Proto, o.SPort)
}

// IPVS operations.
const (
	IPVSAddService = "add-service"
	IPVSDelService = "del-service"
	IPVSAddDest    = "add-dest"
	IPVSDelDest    = "del-dest"
	IPVSSetWeight  = "set-weight"
)

// IPVSOp changes a firewall-mark service or one of its real servers
// (masquerading, port 0).
type IPVSOp struct {
	Op        string     `json:"op"`
	FWMark    uint32     `json:"fwmark"`
	Scheduler string     `json:"scheduler,omitempty"`
	Addr      netip.Addr `json:"addr,omitzero"`
	Weight    int        `json:"weight"`
}

func (o *IPVSOp) apply(k *Kernel, netns string) error { return k.LB.IPVS(netns, *o) }

func (o *IPVSOp) describe(place string) string {
	return fmt.Sprintf("%s: ipvs %s fwmark %d %s weight %d", place, o.Op, o.FWMark, o.Addr, o.Weight)
}

// SendOp is a datagram sent from a namespace (recorded, never replayed).
type SendOp struct {
	Proto string `json:"proto"`
	Addr  string `json:"addr"`
	SPort int    `json:"sport"`
	// Answer is the task that answered.
	Answer string `json:"answer"`
}

func (o *SendOp) apply(*Kernel, string) error {
	return errors.New("a sent datagram cannot be replayed")
}

func (o *SendOp) describe(place string) string {
	return fmt.Sprintf("%s: %s datagram from port %d to %s, answered by %s", place, o.Proto, o.SPort, o.Addr, o.Answer)
}
