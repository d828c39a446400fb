package mesh

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
)

// DefaultRunDir holds one directory per mesh.
const DefaultRunDir = "/run/meshtrace"

// Files in a mesh's directory.
const (
	stateFile  = "state.json"
	agentPID   = "agent.pid"
	agentLog   = "agent.log"
	agentReady = "agent.ready"
)

// Phases recorded in the state file.
const (
	PhaseBuilding = "building"
	PhaseReady    = "ready"
)

// ErrNoMesh is returned (wrapped) when a mesh does not exist.
var ErrNoMesh = errors.New("no such mesh")

// State is a mesh as built, saved as state.json. Its JSON is also the body
// of `mesh status -o json` (which adds health).
type State struct {
	Name      string         `json:"name"`
	LB        string         `json:"lb"`
	AgentPID  int            `json:"agent_pid"`
	Phase     string         `json:"phase"`
	Created   time.Time      `json:"created"`
	Dir       string         `json:"dir"`
	OverlayID string         `json:"overlay_id"`
	Client    ClientState    `json:"client"`
	Nodes     []NodeState    `json:"nodes"`
	Services  []ServiceState `json:"services"`
	// Health is filled by Status, never saved.
	Health *Health `json:"health,omitempty"`
}

// ClientState is the client netns on the LAN.
type ClientState struct {
	IP    netip.Addr `json:"ip"`
	Netns string     `json:"netns"`
}

// NodeState is one node.
type NodeState struct {
	Name      string     `json:"name"`
	IP        netip.Addr `json:"ip"`
	Host      string     `json:"host_netns"` // the node's "host" netns file
	NetnsDir  string     `json:"netns_dir"`  // plays /run/docker/netns
	SandboxIP netip.Addr `json:"sandbox_ip"`
	// Gossip is filled by Status: the node's gossip port (tcp/7946)
	// accepted a connection from the LAN.
	Gossip *bool `json:"gossip,omitempty"`
}

// ServiceState is one service.
type ServiceState struct {
	Name      string     `json:"name"`
	Proto     string     `json:"proto"`
	Published int        `json:"published"` // 0 for a dnsrr service
	Target    int        `json:"target"`
	FWMark    uint32     `json:"fwmark"`
	VIP       netip.Addr `json:"vip"`
	// EndpointMode is EndpointDNSRR or empty (a VIP).
	EndpointMode string      `json:"endpoint_mode,omitempty"`
	Tasks        []TaskState `json:"tasks"`
}

// DNSRR says whether the service is in DNS round-robin mode (no VIP, no
// published port).
func (s ServiceState) DNSRR() bool { return s.EndpointMode == EndpointDNSRR }

// TaskState is one task.
type TaskState struct {
	Name  string     `json:"name"`
	Node  string     `json:"node"`
	IP    netip.Addr `json:"ip"`
	Netns string     `json:"netns"` // netns file path
	// Resolver is the task's embedded DNS server (zero in a mesh built
	// before it had one).
	Resolver dockerrules.Resolver `json:"resolver"`
	// Answering is filled by Status: the task's server answered.
	Answering *bool `json:"answering,omitempty"`
	// Resolving is filled by Status: the task's embedded DNS server
	// answered its service's name, asked at 127.0.0.11:53.
	Resolving *bool `json:"resolving,omitempty"`
}

// Health is what Status checked.
type Health struct {
	AgentAlive bool     `json:"agent_alive"`
	Healthy    bool     `json:"healthy"`
	Problems   []string `json:"problems,omitempty"`
}

// State returns the state of a freshly planned mesh.
func (p *Plan) State() *State {
	st := &State{
		Name: p.Name, LB: p.LB, Phase: PhaseBuilding, Created: time.Now().UTC().Truncate(time.Second),
		Dir: p.Dir, OverlayID: p.OverlayID,
		Client: ClientState{IP: addrplan.ClientIP, Netns: p.ClientPath()},
	}
	for i, n := range p.Nodes {
		st.Nodes = append(st.Nodes, NodeState{Name: n.Name, IP: n.IP, Host: p.HostPath(i), NetnsDir: p.NetnsDir(i), SandboxIP: n.SandboxIP})
	}
	for _, s := range p.Services {
		ss := ServiceState{Name: s.Name, Proto: s.Proto, Published: s.Published, Target: s.Target, FWMark: s.FWMark, VIP: s.VIP}
		if s.DNSRR() {
			ss.EndpointMode = EndpointDNSRR
		}
		for _, t := range s.Tasks {
			ss.Tasks = append(ss.Tasks, TaskState{Name: t.Name, Node: p.Nodes[t.Node].Name, IP: t.IngressIP, Netns: p.TaskPath(t), Resolver: t.Resolver})
		}
		st.Services = append(st.Services, ss)
	}
	return st
}

// Save writes the state file atomically.
func (st *State) Save() error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := WriteFile(filepath.Join(st.Dir, stateFile), append(b, '\n')); err != nil {
		return fmt.Errorf("mesh %s: %w", st.Name, err)
	}
	return nil
}

// WriteFile writes b to path atomically: to a temporary file next to it,
// renamed over it, so a reader sees the old file or the new one, never
// half of one. The mesh's state and control files and faults.json are
// written with it.
func WriteFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Load reads a mesh's state file from runDir ("" = DefaultRunDir).
func Load(runDir, name string) (*State, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	dir := filepath.Join(orDefault(runDir), name)
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(dir); derr == nil {
			return nil, fmt.Errorf("mesh %s: %s has no %s (a half-built mesh? run `meshtrace mesh down --name %s`)", name, dir, stateFile, name)
		}
		return nil, fmt.Errorf("mesh %s: %w (see `meshtrace mesh ls`)", name, ErrNoMesh)
	}
	if err != nil {
		return nil, fmt.Errorf("mesh %s: %w", name, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("mesh %s: %s: %w", name, filepath.Join(dir, stateFile), err)
	}
	return &st, nil
}

// Locate returns the namespace file that plays a node's root namespace and
// the directory that plays its /run/docker/netns, for inspect.Live.
func Locate(name, node string) (hostNetns, netnsDir string, err error) {
	return LocateIn(DefaultRunDir, name, node)
}

// LocateIn is Locate under another run directory.
func LocateIn(runDir, name, node string) (hostNetns, netnsDir string, err error) {
	if err := ValidName(name); err != nil {
		return "", "", err
	}
	dir := filepath.Join(orDefault(runDir), name)
	if _, err := os.Stat(dir); err != nil {
		return "", "", fmt.Errorf("mesh %s: %w (see `meshtrace mesh ls`)", name, ErrNoMesh)
	}
	if node == "" || strings.ContainsAny(node, "/.") {
		return "", "", fmt.Errorf("mesh %s: bad node name %q", name, node)
	}
	hostNetns = filepath.Join(dir, node, "host")
	netnsDir = filepath.Join(dir, node, "netns")
	if _, err := os.Stat(hostNetns); err != nil {
		return "", "", fmt.Errorf("mesh %s: no node %q (nodes: %s)", name, node, strings.Join(nodeNames(dir), ", "))
	}
	return hostNetns, netnsDir, nil
}

func nodeNames(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var ns []string
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "node") {
			ns = append(ns, e.Name())
		}
	}
	return ns
}

// Summary is one line of `mesh ls`.
type Summary struct {
	Name     string `json:"name"`
	Phase    string `json:"phase"` // building, ready, or "broken" without a state file
	LB       string `json:"lb,omitempty"`
	Nodes    int    `json:"nodes"`
	Tasks    int    `json:"tasks"`
	AgentPID int    `json:"agent_pid,omitempty"`
	// Agent is "running", "dead" (the recorded agent is gone: no task
	// answers) or "none" (no agent recorded: a mesh not up yet).
	Agent string `json:"agent"`
}

// What Summary.Agent says of a mesh's agent.
const (
	AgentRunning = "running"
	AgentDead    = "dead"
	AgentNone    = "none"
)

func agentState(pid int, name, runDir string) string {
	switch {
	case pid <= 0:
		return AgentNone
	case agentRunning(pid, name, runDir):
		return AgentRunning
	}
	return AgentDead
}

// List returns the meshes under runDir, by name, each with whether its
// agent still runs.
func List(runDir string) ([]Summary, error) {
	ents, err := os.ReadDir(orDefault(runDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mesh ls: %w", err)
	}
	var out []Summary
	for _, e := range ents {
		if !e.IsDir() || ValidName(e.Name()) != nil {
			continue
		}
		s := Summary{Name: e.Name(), Phase: "broken", Agent: AgentNone}
		if st, err := Load(runDir, e.Name()); err == nil {
			s.Phase, s.LB, s.Nodes, s.AgentPID = st.Phase, st.LB, len(st.Nodes), st.AgentPID
			s.Agent = agentState(st.AgentPID, e.Name(), orDefault(runDir))
			for _, sv := range st.Services {
				s.Tasks += len(sv.Tasks)
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Task finds a task by name (web.2).
func (st *State) Task(name string) (TaskState, ServiceState, bool) {
	for _, s := range st.Services {
		for _, t := range s.Tasks {
			if t.Name == name {
				return t, s, true
			}
		}
	}
	return TaskState{}, ServiceState{}, false
}

func orDefault(runDir string) string {
	if runDir == "" {
		return DefaultRunDir
	}
	return runDir
}
