package mesh

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// faultsFile records the faults injected into a mesh, with the exact steps
// that undo them, so `mesh repair` works from any process.
const faultsFile = "faults.json"

// Fault is one injected fault as recorded in faults.json.
type Fault struct {
	ID      int    `json:"id"`
	Kind    string `json:"fault"`
	Node    string `json:"node"`
	Service string `json:"service,omitempty"`
	Task    string `json:"task,omitempty"`
	// Detail says exactly what was changed.
	Detail string `json:"detail"`
	// Code, Netns and Port are the finding doctor must report: the
	// namespace as doctor names it (host, ingress_sbox, a task's netns
	// file, 1-<overlay id>) and the published port ("tcp/8080") when
	// the finding is about one.
	Code  string `json:"code"`
	Netns string `json:"netns"`
	Port  string `json:"port,omitempty"`
	// ClientPort is the client's source port of stale-conntrack's
	// datagram: datagrams from it still follow the stale entry.
	ClientPort int       `json:"client_port,omitempty"`
	Time       time.Time `json:"time"`
	Steps      []Step    `json:"steps"`
}

// Step is one change and what undoes it exactly.
type Step struct {
	Do   Action   `json:"do"`
	Undo []Action `json:"undo"`
}

// Action is one change in one namespace of the mesh; exactly one of the
// operation fields is set.
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

// RulesOp is iptables-restore --noflush input for one table (chain policy
// lines first, then -D/-I/-A lines), applied as one transaction.
type RulesOp struct {
	Table string   `json:"table"`
	Lines []string `json:"lines"`
}

// SysctlOp writes /proc/sys/KEY (slash-separated, net/ipv4/ip_forward).
type SysctlOp struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// LinkOp sets a link's MTU and GSO segment limit (0: leave alone).
type LinkOp struct {
	Name       string `json:"name"`
	MTU        int    `json:"mtu,omitempty"`
	GSOMaxSegs int    `json:"gso_max_segs,omitempty"`
}

// FDBOp adds or deletes a permanent FDB entry of a VXLAN device.
type FDBOp struct {
	Dev    string     `json:"dev"`
	MAC    string     `json:"mac"`
	Dst    netip.Addr `json:"dst"`
	Delete bool       `json:"delete,omitempty"`
}

// Task modes of the agent's control channel.
const (
	TaskServe = "serve" // answer (the default)
	TaskStop  = "stop"  // close the server socket
	TaskHang  = "hang"  // keep listening, never answer
)

// TaskOp puts a task's server in a mode.
type TaskOp struct {
	Task string `json:"task"`
	Mode string `json:"mode"`
}

// ConntrackOp deletes the conntrack entries of Proto whose original
// source port is SPort.
type ConntrackOp struct {
	Proto string `json:"proto"`
	SPort int    `json:"sport"`
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

// SendOp is a datagram sent from a namespace (recorded, never replayed).
type SendOp struct {
	Proto string `json:"proto"`
	Addr  string `json:"addr"`
	SPort int    `json:"sport"`
	// Answer is the task that answered.
	Answer string `json:"answer"`
}

func (a Action) String() string {
	switch {
	case a.Rules != nil:
		return fmt.Sprintf("%s: iptables -t %s: %s", a.Place, a.Rules.Table, strings.Join(a.Rules.Lines, "; "))
	case a.Sysctl != nil:
		return fmt.Sprintf("%s: sysctl %s=%s", a.Place, strings.ReplaceAll(a.Sysctl.Key, "/", "."), a.Sysctl.Value)
	case a.Link != nil:
		return fmt.Sprintf("%s: ip link set %s mtu %d gso_max_segs %d", a.Place, a.Link.Name, a.Link.MTU, a.Link.GSOMaxSegs)
	case a.FDB != nil:
		verb := "append"
		if a.FDB.Delete {
			verb = "del"
		}
		return fmt.Sprintf("%s: bridge fdb %s %s dev %s dst %s self permanent", a.Place, verb, a.FDB.MAC, a.FDB.Dev, a.FDB.Dst)
	case a.Task != nil:
		return fmt.Sprintf("agent: task %s %s", a.Task.Task, a.Task.Mode)
	case a.Conntrack != nil:
		return fmt.Sprintf("%s: conntrack -D -p %s --orig-port-src %d", a.Place, a.Conntrack.Proto, a.Conntrack.SPort)
	case a.IPVS != nil:
		return fmt.Sprintf("%s: ipvs %s fwmark %d %s weight %d", a.Place, a.IPVS.Op, a.IPVS.FWMark, a.IPVS.Addr, a.IPVS.Weight)
	case a.Send != nil:
		return fmt.Sprintf("%s: %s datagram from port %d to %s, answered by %s", a.Place, a.Send.Proto, a.Send.SPort, a.Send.Addr, a.Send.Answer)
	}
	return a.Place + ": nothing"
}

// faultLog is faults.json.
type faultLog struct {
	NextID int     `json:"next_id"`
	Faults []Fault `json:"faults"`
}

func loadFaultLog(dir string) (*faultLog, error) {
	b, err := os.ReadFile(filepath.Join(dir, faultsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &faultLog{NextID: 1}, nil
	}
	if err != nil {
		return nil, err
	}
	var l faultLog
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, faultsFile), err)
	}
	if l.NextID < 1 {
		l.NextID = 1
	}
	return &l, nil
}

func (l *faultLog) save(dir string) error {
	path := filepath.Join(dir, faultsFile)
	if len(l.Faults) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Faults returns the faults injected into mesh name, oldest first.
func Faults(runDir, name string) ([]Fault, error) {
	st, err := Load(runDir, name)
	if err != nil {
		return nil, err
	}
	l, err := loadFaultLog(st.Dir)
	if err != nil {
		return nil, fmt.Errorf("mesh %s: %w", name, err)
	}
	return l.Faults, nil
}
