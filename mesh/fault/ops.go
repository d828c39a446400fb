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
	FDB       *FDBOp       `json:"fdb,omitempty"`
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
	case a.FDB != nil:
		return a.FDB
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
	Table string   `json:"table"`
	Lines []string `json:"lines"`
}

func (o *RulesOp) apply(k *Kernel, netns string) error {
	return k.Firewall.RestoreRules(netns, o.Table, o.Lines)
}

func (o *RulesOp) describe(place string) string {
	return fmt.Sprintf("%s: iptables -t %s: %s", place, o.Table, strings.Join(o.Lines, "; "))
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

// TaskOp puts a task's server in a mode (mesh.TaskServe, ...).
type TaskOp struct {
	Task string `json:"task"`
	Mode string `json:"mode"`
}

func (o *TaskOp) apply(k *Kernel, _ string) error {
	_, err := k.Tasks.SetTaskMode(o.Task, o.Mode)
	return err
}

func (o *TaskOp) describe(string) string { return fmt.Sprintf("agent: task %s %s", o.Task, o.Mode) }

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
