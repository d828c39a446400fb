package collect

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/mount"
	mswarm "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/safefile"
	"github.com/meshtrace/meshtrace/swarm"
)

// API is what swarm collect asks the manager's engine: the engine client
// implements it (tests run that client against a fake engine).
type API interface {
	Ping(ctx context.Context, o client.PingOptions) (client.PingResult, error)
	NodeList(ctx context.Context, o client.NodeListOptions) (client.NodeListResult, error)
	ServiceCreate(ctx context.Context, o client.ServiceCreateOptions) (client.ServiceCreateResult, error)
	TaskList(ctx context.Context, o client.TaskListOptions) (client.TaskListResult, error)
	TaskLogs(ctx context.Context, taskID string, o client.TaskLogsOptions) (client.TaskLogsResult, error)
	ServiceRemove(ctx context.Context, serviceID string, o client.ServiceRemoveOptions) (client.ServiceRemoveResult, error)
}

var _ API = (*client.Client)(nil)

// MinAPI is the engine API that has global jobs (Docker 20.10).
const MinAPI = "1.41"

// The environment the task reads its node from (Go templates the engine
// fills per task).
const (
	EnvNode   = "MESHTRACE_NODE"
	EnvNodeID = "MESHTRACE_NODE_ID"
)

// TaskArgs are the arguments of meshtrace in each task: collect in-process
// (the image has no tools) and write the bundle framed on stdout.
var TaskArgs = []string{"collect", "--in-process", "--stdout-frame"}

// Options configure Run.
type Options struct {
	Dir      string        // DIR: DIR/<node>/ per node, DIR/swarm.json
	Image    string        // the meshtrace image, present on every node
	Timeout  time.Duration // how long the nodes have to answer (0: 3 minutes)
	Poll     time.Duration // how often the tasks are listed (0: 1 s)
	Progress io.Writer     // one line per node and state (nil: none)
	Limits   Limits        // bounds on each task's log
}

// Run collects every node of the swarm whose manager api is: the global
// job created, each task's frame read from its log and written as
// DIR/<node>/, DIR/swarm.json listing every node with why it was not
// collected, and the job removed (also on error or cancel). A node that
// does not answer within the timeout is named; the others are still
// written. The error is for the collection as a whole (not a manager, no
// global jobs, DIR not writable, no node collected).
func Run(ctx context.Context, api API, o Options) (*swarm.Manifest, error) {
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Image == "" {
		return nil, errors.New("swarm collect: no image (--image): meshtrace's image must be on every node")
	}
	ping, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		return nil, fmt.Errorf("swarm collect: docker engine: %w", err)
	}
	if ping.APIVersion != "" && versions.LessThan(ping.APIVersion, MinAPI) {
		return nil, fmt.Errorf("swarm collect: the engine speaks API %s; global jobs need %s (Docker 20.10 or later)", ping.APIVersion, MinAPI)
	}
	if s := ping.SwarmStatus; s != nil && !s.ControlAvailable {
		return nil, fmt.Errorf("swarm collect: this engine is not a swarm manager (swarm state %q): run it on a manager", s.NodeState)
	}
	nl, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("swarm collect: node list: %w", err)
	}
	man, byID := manifest(nl.Items)
	out, err := safefile.CreateDir(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("swarm collect: %w", err)
	}
	defer out.Close()

	c := &run{api: api, o: o, out: out, man: man, byID: byID, state: map[string]string{}}
	svc, err := c.create(ctx)
	if err != nil {
		return nil, err
	}
	man.Service = svc
	defer c.remove(ctx, svc)
	werr := c.wait(ctx, svc)
	for i := range man.Nodes {
		n := &man.Nodes[i]
		if !n.Collected && n.Reason == "" {
			n.Reason = fmt.Sprintf("no answer within %s (task %s)", o.Timeout, c.stateOf(n.ID))
			c.progress(n.Name, "not collected: "+n.Reason)
		}
	}
	b, err := json.MarshalIndent(man, "", "  ")
	if err == nil {
		err = out.WriteFile(swarm.ManifestFile, append(b, '\n'))
	}
	if err != nil {
		return man, fmt.Errorf("swarm collect: %w", err)
	}
	if werr != nil {
		return man, werr
	}
	collected := 0
	for _, n := range man.Nodes {
		if n.Collected {
			collected++
		}
	}
	if collected == 0 {
		return man, fmt.Errorf("swarm collect: no node collected (see %s)", out.Path())
	}
	return man, nil
}

// manifest lists the nodes, each with its folder's name: the hostname,
// or, when that is not a safe name or is taken, the node ID. Nodes that
// are down or drained are marked not collected at once: a global job
// schedules nothing there.
func manifest(nodes []mswarm.Node) (*swarm.Manifest, map[string]int) {
	sort.Slice(nodes, func(i, j int) bool {
		return nodes[i].Description.Hostname < nodes[j].Description.Hostname ||
			nodes[i].Description.Hostname == nodes[j].Description.Hostname && nodes[i].ID < nodes[j].ID
	})
	man := &swarm.Manifest{}
	byID := map[string]int{}
	taken := map[string]bool{}
	for _, n := range nodes {
		if !idRE.MatchString(n.ID) {
			continue // not a node the engine would name
		}
		name := n.Description.Hostname
		if !SafeName(name) || taken[name] {
			name = n.ID
		}
		taken[name] = true
		mn := swarm.ManifestNode{Name: name, ID: n.ID, Role: string(n.Spec.Role)}
		mn.Addr = parseAddr(n.Status.Addr)
		switch {
		case n.Status.State != mswarm.NodeStateReady:
			mn.Reason = fmt.Sprintf("node is %s", n.Status.State)
		case n.Spec.Availability == mswarm.NodeAvailabilityDrain:
			mn.Reason = "node is drained"
		}
		byID[n.ID] = len(man.Nodes)
		man.Nodes = append(man.Nodes, mn)
	}
	return man, byID
}

type run struct {
	api   API
	o     Options
	out   *safefile.OutDir
	man   *swarm.Manifest
	byID  map[string]int
	state map[string]string // node id → last task state shown
}

func (c *run) progress(node, msg string) {
	fmt.Fprintf(c.o.Progress, "%s: %s\n", node, msg)
}

func (c *run) stateOf(id string) string {
	if s := c.state[id]; s != "" {
		return s
	}
	return "never scheduled"
}

// Spec is the global job's: meshtrace's image on the host's network with
// NET_ADMIN and SYS_ADMIN (setns into the namespaces), the engine's netns
// folder bind-mounted rslave (namespaces made after the task started can
// be entered), docker.sock read-only; never privileged, no host PID
// namespace; json-file logs (never rotated under a frame) so the manager
// can read them back; no restart.
func Spec(name, image string) mswarm.ServiceSpec {
	none := mswarm.RestartPolicyConditionNone
	return mswarm.ServiceSpec{
		Annotations: mswarm.Annotations{Name: name, Labels: map[string]string{"meshtrace.collect": "1"}},
		Mode:        mswarm.ServiceMode{GlobalJob: &mswarm.GlobalJob{}},
		TaskTemplate: mswarm.TaskSpec{
			ContainerSpec: &mswarm.ContainerSpec{
				Image: image,
				Args:  TaskArgs,
				Env: []string{
					EnvNode + "={{.Node.Hostname}}",
					EnvNodeID + "={{.Node.ID}}",
				},
				CapabilityAdd: []string{"CAP_NET_ADMIN", "CAP_SYS_ADMIN"},
				Mounts: []mount.Mount{
					{
						Type: mount.TypeBind, Source: "/var/run/docker/netns", Target: "/run/docker/netns",
						BindOptions: &mount.BindOptions{Propagation: mount.PropagationRSlave},
					},
					{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock", ReadOnly: true},
				},
			},
			Networks:      []mswarm.NetworkAttachmentConfig{{Target: "host"}},
			RestartPolicy: &mswarm.RestartPolicy{Condition: none},
			// json-file, readable back through the API; its max-size
			// set, else a daemon default (log-opts max-size=10m) would
			// rotate a large node's frame away before it is read.
			LogDriver: &mswarm.Driver{Name: "json-file", Options: map[string]string{"max-size": "2g"}},
		},
	}
}

func (c *run) create(ctx context.Context) (string, error) {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "meshtrace-collect-" + hex.EncodeToString(rnd[:])
	r, err := c.api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: Spec(name, c.o.Image)})
	if err != nil {
		return "", fmt.Errorf("swarm collect: create the global job: %w", err)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(c.o.Progress, "swarm collect: engine: %s\n", w)
	}
	fmt.Fprintf(c.o.Progress, "swarm collect: global job %s (image %s) on %d nodes\n", name, c.o.Image, len(c.man.Nodes))
	for _, n := range c.man.Nodes {
		if n.Reason != "" {
			c.progress(n.Name, "not collected: "+n.Reason)
		}
	}
	return r.ID, nil
}

// remove removes the job, even when ctx is cancelled.
func (c *run) remove(ctx context.Context, id string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := c.api.ServiceRemove(rctx, id, client.ServiceRemoveOptions{}); err != nil {
		fmt.Fprintf(c.o.Progress, "swarm collect: could not remove the global job %s: %v (remove it with: docker service rm %s)\n", id, err, id)
	}
}

// wait lists the job's tasks until every node is done or the timeout:
// a completed task's log is read and its bundle written at once.
func (c *run) wait(ctx context.Context, svc string) error {
	deadline := time.NewTimer(c.o.Timeout)
	defer deadline.Stop()
	// A log that stalls is cut at the deadline too: the node is named,
	// the others still written.
	lctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	tick := time.NewTicker(c.o.Poll)
	defer tick.Stop()
	for {
		tl, err := c.api.TaskList(lctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", svc)})
		if err != nil && lctx.Err() != nil && ctx.Err() == nil {
			return nil // the deadline came during the list: the nodes left are named
		}
		if err != nil {
			return fmt.Errorf("swarm collect: task list: %w", err)
		}
		latest := map[string]mswarm.Task{}
		for _, t := range tl.Items {
			if p, ok := latest[t.NodeID]; !ok || t.Meta.Version.Index > p.Meta.Version.Index {
				latest[t.NodeID] = t
			}
		}
		pending := 0
		for i := range c.man.Nodes {
			n := &c.man.Nodes[i]
			if n.Collected || n.Reason != "" {
				continue
			}
			t, ok := latest[n.ID]
			if !ok {
				pending++
				continue
			}
			c.task(lctx, n, t)
			if !n.Collected && n.Reason == "" {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("swarm collect: %w", ctx.Err())
		case <-deadline.C:
			return nil
		case <-tick.C:
		}
	}
}

// task follows one node's task: its state shown when it changes, its
// bundle read when it completed, its error when it failed.
func (c *run) task(ctx context.Context, n *swarm.ManifestNode, t mswarm.Task) {
	st := string(t.Status.State)
	if c.state[n.ID] != st {
		c.state[n.ID] = st
		if t.Status.State != mswarm.TaskStateComplete {
			c.progress(n.Name, st)
		}
	}
	switch t.Status.State {
	case mswarm.TaskStateComplete:
		files, size, err := c.fetch(ctx, n, t.ID)
		if err != nil {
			n.Reason = err.Error()
			c.progress(n.Name, "not collected: "+n.Reason)
			return
		}
		n.Collected = true
		c.progress(n.Name, fmt.Sprintf("collected, %d files (%s)", files, safefile.Size(size)))
	case mswarm.TaskStateFailed, mswarm.TaskStateRejected, mswarm.TaskStateShutdown, mswarm.TaskStateOrphaned, mswarm.TaskStateRemove:
		msg := t.Status.Err
		if msg == "" {
			msg = t.Status.Message
		}
		n.Reason = fmt.Sprintf("task %s %s: %s", t.ID, st, msg)
		if tail := c.stderrTail(ctx, t.ID); tail != "" {
			n.Reason += ": " + tail
		}
		c.progress(n.Name, "not collected: "+n.Reason)
	}
}

// fetch reads a completed task's log and writes its bundle as
// DIR/<node>/.
func (c *run) fetch(ctx context.Context, n *swarm.ManifestNode, taskID string) (files int, size int64, err error) {
	lim := c.o.Limits.withDefaults()
	logs, err := c.api.TaskLogs(ctx, taskID, client.TaskLogsOptions{ShowStdout: true})
	if err != nil {
		return 0, 0, fmt.Errorf("task %s log: %w", taskID, err)
	}
	defer logs.Close()
	// The log is base64 (4/3) in lines, plus what else the task printed.
	src := io.LimitReader(logs, lim.Bytes/3*4+lim.Bytes/32+1<<20)
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, io.Discard, src)
		pw.CloseWithError(err)
	}()
	f, err := Decode(pr, lim)
	pr.CloseWithError(errors.New("frame read")) // stop the copy
	if err != nil {
		return 0, 0, fmt.Errorf("task %s log: %w", taskID, err)
	}
	if f.ID != "" && f.ID != n.ID {
		return 0, 0, fmt.Errorf("task %s log: the frame is node %s's (id %s), not this node's (id %s)", taskID, f.Node, f.ID, n.ID)
	}
	if err := c.out.Mkdir(n.Name); err != nil {
		return 0, 0, err
	}
	files, err = Extract(f.Tar, prefixed{c.out, n.Name}, lim)
	if err != nil {
		return files, 0, fmt.Errorf("task %s: %w", taskID, err)
	}
	return files, int64(len(f.Tar)), nil
}

// stderrTail is the last line a failed task wrote on stderr (bounded),
// "" when there is none or it cannot be read.
func (c *run) stderrTail(ctx context.Context, taskID string) string {
	logs, err := c.api.TaskLogs(ctx, taskID, client.TaskLogsOptions{ShowStderr: true, Tail: "5"})
	if err != nil {
		return ""
	}
	defer logs.Close()
	var b limitedBuffer
	_, _ = stdcopy.StdCopy(io.Discard, &b, io.LimitReader(logs, 64<<10))
	return lastLine(b.buf)
}

type limitedBuffer struct{ buf []byte }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if len(b.buf) > 4096 {
		b.buf = b.buf[len(b.buf)-4096:]
	}
	return len(p), nil
}

// prefixed writes a sink's names under dir.
type prefixed struct {
	out inspect.BundleSink
	dir string
}

func (p prefixed) Mkdir(name string) error { return p.out.Mkdir(path.Join(p.dir, name)) }
func (p prefixed) WriteFile(name string, data []byte) error {
	return p.out.WriteFile(path.Join(p.dir, name), data)
}
