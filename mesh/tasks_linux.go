package mesh

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// The agent's control channel: `mesh break` (mesh/fault) writes the wanted mode of
// tasks to tasks.control (with a generation number) and sends the agent
// SIGUSR1; the agent puts every task's server in its mode (serve: answer;
// stop: socket closed; hang: listening, never answering) and writes
// tasks.applied with the generation it applied and any errors.
const (
	taskControlFile = "tasks.control"
	taskAppliedFile = "tasks.applied"
)

// TaskControl is tasks.control and tasks.applied.
type TaskControl struct {
	Gen   int               `json:"gen"`
	Modes map[string]string `json:"modes,omitempty"` // task -> stop|hang; absent: serve
	// DNS are the modes of the tasks' embedded DNS servers: task ->
	// stop; absent: serve.
	DNS map[string]string `json:"dns,omitempty"`
	// Errors (tasks.applied only): task (or "resolver TASK") -> what
	// failed.
	Errors map[string]string `json:"errors,omitempty"`
}

// resolverKey is the key of a task's resolver in TaskControl.Errors.
func resolverKey(task string) string { return "resolver " + task }

func readControl(path string) (TaskControl, error) {
	var c TaskControl
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func writeControl(path string, c TaskControl) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return WriteFile(path, append(b, '\n'))
}

// SetTaskMode asks the agent of st to put task's server in mode and waits
// (at most timeout) until it did; it returns the mode the task had.
func (st *State) SetTaskMode(task, mode string, timeout time.Duration) (string, error) {
	switch mode {
	case TaskServe, TaskStop, TaskHang:
	default:
		return "", fmt.Errorf("task mode %q: want serve, stop or hang", mode)
	}
	return st.control(task, task, mode, timeout, func(c *TaskControl) *map[string]string { return &c.Modes })
}

// SetResolverMode asks the agent of st to put task's embedded DNS server
// in mode (TaskServe or TaskStop: its sockets closed) and waits (at most
// timeout) until it did; it returns the mode it had.
func (st *State) SetResolverMode(task, mode string, timeout time.Duration) (string, error) {
	if mode != TaskServe && mode != TaskStop {
		return "", fmt.Errorf("resolver mode %q: want serve or stop", mode)
	}
	if t, _, ok := st.Task(task); ok && t.Resolver.UDPPort == 0 {
		return "", fmt.Errorf("task %s of mesh %s has no embedded DNS server (a mesh built before it had one)", task, st.Name)
	}
	return st.control(task, resolverKey(task), mode, timeout, func(c *TaskControl) *map[string]string { return &c.DNS })
}

// control sets task's entry of the map modes picks in tasks.control to
// mode, signals the agent and waits until tasks.applied has the new
// generation; errKey is the task's key in its Errors.
func (st *State) control(task, errKey, mode string, timeout time.Duration, modes func(*TaskControl) *map[string]string) (string, error) {
	if _, _, ok := st.Task(task); !ok {
		return "", fmt.Errorf("no task %q in mesh %s", task, st.Name)
	}
	if st.AgentPID <= 0 || !alive(st.AgentPID) || !isAgent(st.AgentPID, st.Name, filepath.Dir(st.Dir)) {
		return "", fmt.Errorf("the mesh's agent is not running (pid %d)", st.AgentPID)
	}
	path := filepath.Join(st.Dir, taskControlFile)
	c, err := readControl(path)
	if err != nil {
		return "", err
	}
	m := modes(&c)
	prev := TaskServe
	if old, ok := (*m)[task]; ok {
		prev = old
	}
	if *m == nil {
		*m = map[string]string{}
	}
	if mode == TaskServe {
		delete(*m, task)
	} else {
		(*m)[task] = mode
	}
	c.Gen++
	if err := writeControl(path, c); err != nil {
		return "", err
	}
	if err := syscall.Kill(st.AgentPID, syscall.SIGUSR1); err != nil {
		return "", fmt.Errorf("signal agent %d: %w", st.AgentPID, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		a, err := readControl(filepath.Join(st.Dir, taskAppliedFile))
		if err == nil && a.Gen >= c.Gen {
			if e := a.Errors[errKey]; e != "" {
				return prev, fmt.Errorf("agent: %s", e)
			}
			return prev, nil
		}
		if time.Now().After(deadline) {
			return prev, fmt.Errorf("agent %d did not apply generation %d of %s within %s", st.AgentPID, c.Gen, path, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// taskServers are the agent's servers: one per task, the task's embedded
// DNS server, and each node's gossip port.
type taskServers struct {
	dir       string
	logger    *log.Logger
	servers   []*taskServer
	resolvers []*resolverServer
	gossip    []*gossipServer
}

func newTaskServers(st *State, logger *log.Logger) *taskServers {
	ts := &taskServers{dir: st.Dir, logger: logger}
	names := newDNSNames(st)
	for _, s := range st.Services {
		for _, t := range s.Tasks {
			ts.servers = append(ts.servers, &taskServer{
				id:    Identity{Task: t.Name, Node: t.Node, Netns: filepath.Base(t.Netns), IP: t.IP.String()},
				netns: t.Netns, proto: s.Proto, port: s.Target, logger: logger, mode: TaskStop,
			})
			if t.Resolver.UDPPort != 0 {
				ts.resolvers = append(ts.resolvers, &resolverServer{task: t.Name, netns: t.Netns, ports: t.Resolver,
					names: names, logger: logger, mode: TaskStop})
			}
		}
	}
	for _, n := range st.Nodes {
		ts.gossip = append(ts.gossip, &gossipServer{node: n.Name, netns: n.Host})
	}
	return ts
}

// serveAll opens every server.
func (ts *taskServers) serveAll() error {
	for _, s := range ts.servers {
		if err := s.set(TaskServe); err != nil {
			return err
		}
	}
	for _, r := range ts.resolvers {
		if err := r.set(TaskServe); err != nil {
			return err
		}
	}
	for _, g := range ts.gossip {
		if err := g.open(); err != nil {
			return err
		}
	}
	return nil
}

// apply reads tasks.control, puts every task in its mode and writes
// tasks.applied.
func (ts *taskServers) apply() {
	c, err := readControl(filepath.Join(ts.dir, taskControlFile))
	if err != nil {
		ts.logger.Printf("control: %v", err)
		return
	}
	applied := TaskControl{Gen: c.Gen, Modes: c.Modes}
	for _, s := range ts.servers {
		want := TaskServe
		if m, ok := c.Modes[s.id.Task]; ok {
			want = m
		}
		if err := s.set(want); err != nil {
			if applied.Errors == nil {
				applied.Errors = map[string]string{}
			}
			applied.Errors[s.id.Task] = err.Error()
			ts.logger.Printf("control: %v", err)
		}
	}
	applied.DNS = c.DNS
	for _, r := range ts.resolvers {
		want := TaskServe
		if m, ok := c.DNS[r.task]; ok {
			want = m
		}
		if err := r.set(want); err != nil {
			if applied.Errors == nil {
				applied.Errors = map[string]string{}
			}
			applied.Errors[resolverKey(r.task)] = err.Error()
			ts.logger.Printf("control: %v", err)
		}
	}
	if err := writeControl(filepath.Join(ts.dir, taskAppliedFile), applied); err != nil {
		ts.logger.Printf("control: %v", err)
	}
	var modes []string
	for t, m := range c.Modes {
		modes = append(modes, t+"="+m)
	}
	for t, m := range c.DNS {
		modes = append(modes, resolverKey(t)+"="+m)
	}
	sort.Strings(modes)
	ts.logger.Printf("control generation %d applied: %s", c.Gen, orNone(strings.Join(modes, " ")))
}

func orNone(s string) string {
	if s == "" {
		return "every task serving"
	}
	return s
}

func (ts *taskServers) closeAll() {
	for _, s := range ts.servers {
		s.set(TaskStop)
	}
	for _, r := range ts.resolvers {
		r.set(TaskStop)
	}
	for _, g := range ts.gossip {
		g.close()
	}
}

// taskServer is one task's server socket, opened inside the task's
// namespace, in one of the task modes.
type taskServer struct {
	id     Identity
	netns  string
	proto  string
	port   int
	logger *log.Logger
	mode   string
	stop   func()
}

func (s *taskServer) set(mode string) error {
	if mode == s.mode {
		return nil
	}
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
	s.mode = TaskStop
	switch mode {
	case TaskStop:
		return nil
	case TaskServe, TaskHang:
	default:
		return fmt.Errorf("task %s: unknown mode %q", s.id.Task, mode)
	}
	stop, err := s.open(mode == TaskHang)
	if err != nil {
		return err
	}
	s.stop, s.mode = stop, mode
	return nil
}

// open listens in the task's namespace and serves (or holds) until the
// returned stop is called.
func (s *taskServer) open(hang bool) (func(), error) {
	addr := ":" + strconv.Itoa(s.port)
	var wg sync.WaitGroup
	if s.proto == "udp" {
		var pc net.PacketConn
		err := netnsx.Do(s.netns, func() (err error) { pc, err = net.ListenPacket("udp4", addr); return })
		if err != nil {
			return nil, fmt.Errorf("task %s: listen udp%s in %s: %w", s.id.Task, addr, s.netns, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if hang {
				drainUDP(pc)
			} else {
				serveUDP(pc, s.id)
			}
		}()
		return func() { pc.Close(); wg.Wait() }, nil
	}
	var ln net.Listener
	err := netnsx.Do(s.netns, func() (err error) { ln, err = net.Listen("tcp4", addr); return })
	if err != nil {
		return nil, fmt.Errorf("task %s: listen tcp%s in %s: %w", s.id.Task, addr, s.netns, err)
	}
	if hang {
		h := &holder{ln: ln}
		wg.Add(1)
		go func() { defer wg.Done(); h.run() }()
		return func() { h.close(); wg.Wait() }, nil
	}
	srv := &http.Server{Handler: httpHandler(s.id), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 30 * time.Second, ErrorLog: s.logger}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Printf("task %s: %v", s.id.Task, err)
		}
	}()
	return func() { srv.Close(); wg.Wait() }, nil
}

// drainUDP reads datagrams and never answers.
func drainUDP(pc net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		if _, _, err := pc.ReadFrom(buf); err != nil {
			return
		}
	}
}

// holder accepts connections and holds them without reading or writing:
// a server that is up but does not answer.
type holder struct {
	ln     net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func (h *holder) run() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		if h.closed {
			c.Close()
		} else {
			h.conns = append(h.conns, c)
		}
		h.mu.Unlock()
	}
}

func (h *holder) close() {
	h.ln.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
}
