package collect

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/mount"
	mswarm "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/meshtrace/meshtrace/swarm"
)

// fakeEngine speaks the few endpoints of the Docker API swarm collect
// uses: a manager of nodes whose global-job tasks end as each fakeNode
// says.
type fakeEngine struct {
	t       *testing.T
	api     string // the API version the engine speaks
	manager bool
	nodes   []fakeNode

	mu      sync.Mutex
	spec    *mswarm.ServiceSpec
	removed []string
	lists   int // task lists answered
}

// fakeNode is one node and what its task does.
type fakeNode struct {
	name, id string
	down     bool
	state    mswarm.TaskState // the task's final state ("": never scheduled)
	after    int              // the task is running for this many task lists first
	log      []byte           // its stdout (a frame)
	stderr   string
	err      string
	stall    bool // its log sends half the frame, then nothing until the client goes
}

func (e *fakeEngine) handler() http.Handler {
	mux := http.NewServeMux()
	ping := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", e.api)
		if e.manager {
			w.Header().Set("Swarm", "active/manager")
		} else {
			w.Header().Set("Swarm", "active/worker")
		}
		w.Write([]byte("OK"))
	}
	mux.HandleFunc("/_ping", ping)
	mux.HandleFunc("/{v}/_ping", ping)
	mux.HandleFunc("GET /{v}/nodes", func(w http.ResponseWriter, r *http.Request) {
		var out []mswarm.Node
		for _, n := range e.nodes {
			st := mswarm.NodeStateReady
			if n.down {
				st = mswarm.NodeStateDown
			}
			out = append(out, mswarm.Node{
				ID:          n.id,
				Spec:        mswarm.NodeSpec{Role: mswarm.NodeRoleWorker, Availability: mswarm.NodeAvailabilityActive},
				Description: mswarm.NodeDescription{Hostname: n.name},
				Status:      mswarm.NodeStatus{State: st, Addr: "192.0.2.1"},
			})
		}
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST /{v}/services/create", func(w http.ResponseWriter, r *http.Request) {
		var s mswarm.ServiceSpec
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		e.mu.Lock()
		e.spec = &s
		e.mu.Unlock()
		json.NewEncoder(w).Encode(mswarm.ServiceCreateResponse{ID: "svc1"})
	})
	mux.HandleFunc("GET /{v}/tasks", func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Query().Get("filters"), "svc1") {
			http.Error(w, "tasks listed without the service filter", 400)
			return
		}
		e.mu.Lock()
		e.lists++
		lists := e.lists
		e.mu.Unlock()
		var out []mswarm.Task
		for _, n := range e.nodes {
			if n.state == "" || n.down {
				continue
			}
			st := n.state
			if lists <= n.after {
				st = mswarm.TaskStateRunning
			}
			out = append(out, mswarm.Task{
				ID: "task-" + n.id, NodeID: n.id, ServiceID: "svc1",
				Meta:   mswarm.Meta{Version: mswarm.Version{Index: 10}},
				Status: mswarm.TaskStatus{State: st, Err: n.err},
			})
		}
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /{v}/tasks/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.PathValue("id"), "task-")
		for _, n := range e.nodes {
			if n.id != id {
				continue
			}
			q := r.URL.Query()
			if q.Get("stdout") == "1" && n.stall {
				w.Write(muxFrame(stdcopy.Stdout, n.log[:len(n.log)/2]))
				w.(http.Flusher).Flush()
				<-r.Context().Done()
				return
			}
			if q.Get("stdout") == "1" {
				w.Write(muxFrame(stdcopy.Stdout, n.log))
			}
			if q.Get("stderr") == "1" {
				w.Write(muxFrame(stdcopy.Stderr, []byte(n.stderr)))
			}
			return
		}
		http.NotFound(w, r)
	})
	mux.HandleFunc("DELETE /{v}/services/{id}", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.removed = append(e.removed, r.PathValue("id"))
		e.mu.Unlock()
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	})
	return mux
}

func (e *fakeEngine) client(t *testing.T) *client.Client {
	srv := httptest.NewServer(e.handler())
	t.Cleanup(srv.Close)
	c, err := client.New(client.WithHost("tcp://" + strings.TrimPrefix(srv.URL, "http://")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bundleFrame is a node's frame: a small bundle of its own.
func bundleFrame(t *testing.T, node, id string) []byte {
	return encode(t, Header{Node: node, ID: id}, map[string]string{
		"netns/host/ip-addr.txt": "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n    inet 127.0.0.1/8 scope host lo\n",
		"NOTES.txt":              "collected on " + node + "\n",
	})
}

func runCollect(t *testing.T, e *fakeEngine, timeout time.Duration) (*swarm.Manifest, string, string, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "swarm")
	var progress bytes.Buffer
	man, err := Run(context.Background(), e.client(t), Options{
		Dir: dir, Image: "meshtrace:test", Timeout: timeout, Poll: time.Millisecond, Progress: &progress,
	})
	return man, dir, progress.String(), err
}

// TestCollectEveryNode: every node answers, each bundle lands in
// DIR/<node>/, swarm.json lists them, the job had the spec the brief asks
// for and was removed.
func TestCollectEveryNode(t *testing.T) {
	e := &fakeEngine{t: t, api: "1.47", manager: true, nodes: []fakeNode{
		{name: "node0", id: "id0", state: mswarm.TaskStateComplete, after: 2},
		{name: "node1", id: "id1", state: mswarm.TaskStateComplete},
	}}
	for i := range e.nodes {
		e.nodes[i].log = bundleFrame(t, e.nodes[i].name, e.nodes[i].id)
	}
	man, dir, progress, err := runCollect(t, e, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"node0", "node1"} {
		b, err := os.ReadFile(filepath.Join(dir, n, "NOTES.txt"))
		if err != nil || string(b) != "collected on "+n+"\n" {
			t.Errorf("%s/NOTES.txt: %q, %v", n, b, err)
		}
		if !strings.Contains(progress, n+": collected, 2 files") {
			t.Errorf("progress does not say %s was collected:\n%s", n, progress)
		}
	}
	if !strings.Contains(progress, "node0: running") {
		t.Errorf("progress does not show node0 running:\n%s", progress)
	}
	var onDisk swarm.Manifest
	b, err := os.ReadFile(filepath.Join(dir, swarm.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &onDisk); err != nil {
		t.Fatal(err)
	}
	if len(onDisk.Nodes) != 2 || !onDisk.Nodes[0].Collected || !onDisk.Nodes[1].Collected || len(man.Nodes) != 2 {
		t.Errorf("swarm.json %+v", onDisk)
	}
	if !slices.Equal(e.removed, []string{"svc1"}) {
		t.Errorf("services removed %v, want the job svc1", e.removed)
	}
	checkSpec(t, e.spec)
}

// checkSpec: a global job, host network, NET_ADMIN and SYS_ADMIN, the
// netns folder rslave, docker.sock read-only, nothing privileged.
func checkSpec(t *testing.T, s *mswarm.ServiceSpec) {
	t.Helper()
	if s == nil {
		t.Fatal("no service created")
	}
	if s.Mode.GlobalJob == nil {
		t.Errorf("mode %+v, want global-job", s.Mode)
	}
	cs := s.TaskTemplate.ContainerSpec
	if cs.Image != "meshtrace:test" || !slices.Equal(cs.Args, TaskArgs) {
		t.Errorf("image %q args %q", cs.Image, cs.Args)
	}
	if !slices.Equal(cs.CapabilityAdd, []string{"CAP_NET_ADMIN", "CAP_SYS_ADMIN"}) {
		t.Errorf("caps %v", cs.CapabilityAdd)
	}
	if len(s.TaskTemplate.Networks) != 1 || s.TaskTemplate.Networks[0].Target != "host" {
		t.Errorf("networks %+v, want host", s.TaskTemplate.Networks)
	}
	var netns, sock bool
	for _, m := range cs.Mounts {
		switch m.Source {
		case "/var/run/docker/netns":
			netns = m.Type == mount.TypeBind && m.BindOptions != nil && m.BindOptions.Propagation == mount.PropagationRSlave
		case "/var/run/docker.sock":
			sock = m.Type == mount.TypeBind && m.ReadOnly
		}
	}
	if !netns || !sock {
		t.Errorf("mounts %+v: want the netns folder rslave and docker.sock read-only", cs.Mounts)
	}
	if d := s.TaskTemplate.LogDriver; d == nil || d.Name != "json-file" || d.Options["max-size"] == "" {
		t.Errorf("log driver %+v: want json-file with its own max-size", d)
	}
	if cs.Privileges != nil || slices.ContainsFunc(cs.CapabilityAdd, func(c string) bool { return c == "ALL" }) {
		t.Errorf("privileges %+v", cs.Privileges)
	}
}

// TestCollectNamesSilentNode: a node whose task never ends is named when
// the timeout comes, a failed one with its error, a down one at once; the
// others are written and the job is removed.
func TestCollectNamesSilentNode(t *testing.T) {
	e := &fakeEngine{t: t, api: "1.47", manager: true, nodes: []fakeNode{
		{name: "good", id: "id0", state: mswarm.TaskStateComplete},
		{name: "silent", id: "id1", state: mswarm.TaskStateComplete, after: 1 << 30},
		{name: "failed", id: "id2", state: mswarm.TaskStateFailed, err: "task: non-zero exit (1)", stderr: "collect: host netns: operation not permitted\n"},
		{name: "down", id: "id3", down: true},
		{name: "liar", id: "id4", state: mswarm.TaskStateComplete},
		{name: "cut", id: "id5", state: mswarm.TaskStateComplete},
		{name: "stalls", id: "id6", state: mswarm.TaskStateComplete, stall: true},
	}}
	e.nodes[0].log = bundleFrame(t, "good", "id0")
	e.nodes[4].log = bundleFrame(t, "good", "id0") // another node's frame
	full := bundleFrame(t, "cut", "id5")
	e.nodes[5].log = full[:len(full)/2]
	e.nodes[6].log = bundleFrame(t, "stalls", "id6")
	man, dir, progress, err := runCollect(t, e, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"good":   "",
		"silent": "no answer within 300ms (task running)",
		"failed": "task task-id2 failed: task: non-zero exit (1): collect: host netns: operation not permitted",
		"down":   "node is down",
		"liar":   "not this node's",
		"cut":    "cut short",
		"stalls": "context deadline exceeded",
	}
	for _, n := range man.Nodes {
		w, ok := want[n.Name]
		if !ok {
			t.Errorf("unexpected node %q", n.Name)
			continue
		}
		if n.Collected != (w == "") || !strings.Contains(n.Reason, w) {
			t.Errorf("node %s: collected %v reason %q, want %q", n.Name, n.Collected, n.Reason, w)
		}
		_, err := os.Stat(filepath.Join(dir, n.Name, "netns"))
		if (err == nil) != n.Collected {
			t.Errorf("node %s: bundle on disk %v, collected %v", n.Name, err == nil, n.Collected)
		}
		if w != "" && !strings.Contains(progress, n.Name+": not collected: ") {
			t.Errorf("progress does not name %s:\n%s", n.Name, progress)
		}
	}
	if !slices.Equal(e.removed, []string{"svc1"}) {
		t.Errorf("services removed %v, want the job svc1", e.removed)
	}
}

// TestCollectRefuses: no global jobs before API 1.41, not on a worker;
// nothing created.
func TestCollectRefuses(t *testing.T) {
	for _, c := range []struct {
		e    *fakeEngine
		want string
	}{
		{&fakeEngine{api: "1.40", manager: true}, "global jobs need 1.41"},
		{&fakeEngine{api: "1.47"}, "not a swarm manager"},
	} {
		c.e.t = t
		_, _, _, err := runCollect(t, c.e, time.Second)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
		if c.e.spec != nil {
			t.Errorf("a service was created: %+v", c.e.spec)
		}
	}
}

// TestCollectRemovesOnCancel: ^C during the wait still removes the job.
func TestCollectRemovesOnCancel(t *testing.T) {
	e := &fakeEngine{t: t, api: "1.47", manager: true, nodes: []fakeNode{{name: "n", id: "id0", state: mswarm.TaskStateComplete, after: 1 << 30}}}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			e.mu.Lock()
			l := e.lists
			e.mu.Unlock()
			if l > 2 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, err := Run(ctx, e.client(t), Options{Dir: filepath.Join(t.TempDir(), "d"), Image: "i", Timeout: time.Hour, Poll: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("error %v, want the cancel", err)
	}
	if !slices.Equal(e.removed, []string{"svc1"}) {
		t.Errorf("services removed %v, want the job svc1", e.removed)
	}
}

// muxFrame is p as the engine multiplexes a log stream: an 8-byte header
// (stream, 0, 0, 0, length big-endian) per frame.
func muxFrame(stream stdcopy.StdType, p []byte) []byte {
	var out []byte
	for len(p) > 0 {
		n := min(len(p), 32<<10)
		h := make([]byte, 8)
		h[0] = byte(stream)
		binary.BigEndian.PutUint32(h[4:], uint32(n))
		out = append(append(out, h...), p[:n]...)
		p = p[n:]
	}
	return out
}
