package swarm

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/meshtrace/meshtrace/internal/textsafe"
	"github.com/meshtrace/meshtrace/topology"
)

// PathBackend is one task behind the port, as the nodes' paths name it.
type PathBackend struct {
	IP      netip.Addr `json:"ip"`
	Task    string     `json:"task,omitempty"`
	Service string     `json:"service,omitempty"`
	// Node is the node whose model owns IP (the task's), "" when no
	// node's model does.
	Node string `json:"node,omitempty"`
}

// Label is how the matrix heads the backend's column.
func (b PathBackend) Label() string {
	if b.Task != "" {
		return b.Task
	}
	return b.IP.String()
}

// PathCell is the path from one node to one backend.
type PathCell struct {
	// Verdict is "" (n/a) where the backend is no task and this node's
	// balancer does not send to it: another node's stale real server.
	Verdict topology.Verdict `json:"verdict"`
	// At is the node the break (or what is unknown) is on, Hop the hop
	// that says it (nil when complete, or when the node has no path).
	At     string        `json:"at,omitempty"`
	Hop    *topology.Hop `json:"hop,omitempty"`
	Code   string        `json:"code,omitempty"`
	Reason string        `json:"reason,omitempty"`
}

// PathNode is one entry node's row.
type PathNode struct {
	Name  string     `json:"name"`
	Cells []PathCell `json:"cells"` // one per PathReport.Backends
}

// PathReport is swarm path's answer: every node × every backend.
type PathReport struct {
	Proto    string        `json:"proto"`
	Port     int           `json:"port"`
	Complete bool          `json:"complete"`
	Backends []PathBackend `json:"backends"`
	Nodes    []PathNode    `json:"nodes"`
}

// Codes of a cell that no hop names.
const (
	PathNotPublished = "not-published"     // the node does not publish the port
	PathNotBackend   = "not-a-backend"     // the node's load balancer does not send there
	PathNotCollected = "not-collected"     // the node (or the task's node) was not collected
	PathNoPath       = "path-unreadable"   // the path could not be evaluated
	PathTaskSide     = "task-side-unknown" // the task's node's own path stops before its balancer
)

// Paths evaluates the published port q on every node (topology.FindPath,
// the one evaluator) and joins the paths: from every node to every task
// any node's load balancer sends to. A remote backend's cell is the entry
// node's part (to the overlay) and then the task's node's part (its
// REDIRECT, its listener). A task the node's balancer does not send to
// while others do is broken there (not-a-backend); what was not collected
// is unknown, never complete.
func Paths(nodes []Node, q topology.Query) *PathReport {
	r := &PathReport{Proto: q.Proto, Port: q.Port}
	type entry struct {
		path *topology.Path
		err  error
	}
	paths := make([]entry, len(nodes))
	byIP := map[netip.Addr]*PathBackend{}
	for i, n := range nodes {
		if n.Model == nil {
			continue
		}
		p, err := topology.FindPath(n.Model, q)
		paths[i] = entry{p, err}
		if p == nil {
			continue
		}
		for _, b := range p.Backends {
			pb := byIP[b.IP]
			if pb == nil {
				pb = &PathBackend{IP: b.IP}
				byIP[b.IP] = pb
			}
			if pb.Task == "" {
				pb.Task, pb.Service = b.Task, b.Service
			}
		}
	}
	// A task's node is the node whose model owns its address (also when
	// that node's own path stops before its balancer).
	for _, n := range nodes {
		if n.Model == nil {
			continue
		}
		for ip, pb := range byIP {
			if pb.Node == "" && n.Model.Owner(ip) != nil {
				pb.Node = n.Name
			}
		}
	}
	for _, b := range byIP {
		r.Backends = append(r.Backends, *b)
	}
	sort.Slice(r.Backends, func(i, j int) bool {
		a, b := r.Backends[i], r.Backends[j]
		if a.Label() != b.Label() {
			return a.Label() < b.Label()
		}
		return a.IP.Less(b.IP)
	})
	// local[node][ip] is the task's own part of the path on its node.
	local := map[string]map[netip.Addr]*topology.Backend{}
	for i, n := range nodes {
		if p := paths[i].path; p != nil {
			local[n.Name] = map[netip.Addr]*topology.Backend{}
			for j := range p.Backends {
				if b := &p.Backends[j]; b.Netns != nil {
					local[n.Name][b.IP] = b
				}
			}
		}
	}
	r.Complete = len(r.Backends) > 0
	for i, n := range nodes {
		row := PathNode{Name: n.Name}
		for _, pb := range r.Backends {
			c := cell(n, paths[i].path, paths[i].err, pb, local)
			if c.Verdict != topology.VerdictComplete && c.Verdict != "" {
				r.Complete = false
			}
			row.Cells = append(row.Cells, c)
		}
		r.Nodes = append(r.Nodes, row)
	}
	return r
}

func cell(n Node, p *topology.Path, err error, pb PathBackend, local map[string]map[netip.Addr]*topology.Backend) PathCell {
	unknown := func(code, reason string) PathCell {
		return PathCell{Verdict: topology.VerdictUnknown, At: n.Name, Code: code, Reason: reason}
	}
	if n.Model == nil {
		return unknown(PathNotCollected, "the node was not collected")
	}
	var np *topology.NotPublishedError
	switch {
	case errors.As(err, &np):
		return PathCell{Verdict: topology.VerdictBroken, At: n.Name, Code: PathNotPublished, Reason: np.Error()}
	case err != nil:
		return unknown(PathNoPath, err.Error())
	case p == nil:
		return unknown(PathNoPath, "no path")
	}
	if c, ok := firstStop(n.Name, p.Hops); ok {
		return c
	}
	var b *topology.Backend
	for i := range p.Backends {
		if p.Backends[i].IP == pb.IP {
			b = &p.Backends[i]
		}
	}
	if b == nil {
		if pb.Node == "" && pb.Task == "" {
			// No task has it (another node's stale real server): nothing
			// this node should send to; the node that does is broken.
			return PathCell{}
		}
		if p.Verdict == topology.VerdictUnknown {
			return unknown(PathNoPath, strings.Join(p.Unknowns(), "; "))
		}
		return PathCell{Verdict: topology.VerdictBroken, At: n.Name, Code: PathNotBackend,
			Reason: fmt.Sprintf("%s (%s) is not a real server of this node's load balancer for %s/%d: the other nodes send to it", pb.Label(), pb.IP, p.Proto, p.Port)}
	}
	if c, ok := firstStop(n.Name, b.Hops); ok {
		return c
	}
	if b.Netns == nil { // remote: the task's node's part
		if pb.Node == "" {
			return unknown(PathNotCollected, fmt.Sprintf("no collected node owns %s: the task's side of the path is not known", pb.IP))
		}
		lb := local[pb.Node][pb.IP]
		if lb == nil {
			return PathCell{Verdict: topology.VerdictUnknown, At: pb.Node, Code: PathTaskSide,
				Reason: fmt.Sprintf("the task's side on %s is not evaluated: %s's own path for %s/%d stops before its balancer", pb.Node, pb.Node, p.Proto, p.Port)}
		}
		if c, ok := firstStop(pb.Node, lb.Hops); ok {
			return c
		}
	}
	return PathCell{Verdict: topology.VerdictComplete}
}

// firstStop is the first break of hops, else the first unknown.
func firstStop(node string, hops []topology.Hop) (PathCell, bool) {
	for _, kind := range []topology.HopKind{topology.HopBreak, topology.HopUnknown} {
		for i := range hops {
			if h := hops[i]; h.Kind == kind {
				v := topology.VerdictBroken
				if kind == topology.HopUnknown {
					v = topology.VerdictUnknown
				}
				return PathCell{Verdict: v, At: node, Hop: &h, Code: string(h.Code), Reason: h.Reason}, true
			}
		}
	}
	return PathCell{}, false
}

// Exit is the status swarm path exits with: 0 every cell complete, 3 a
// cell broken, 4 a cell unknown (path's statuses).
func (r *PathReport) Exit() int {
	code := 0
	if len(r.Backends) == 0 {
		code = 4
	}
	for _, n := range r.Nodes {
		for _, c := range n.Cells {
			switch c.Verdict {
			case topology.VerdictBroken:
				return 3
			case topology.VerdictUnknown:
				code = 4
			}
		}
	}
	return code
}

func pathCellText(v topology.Verdict) string {
	switch v {
	case topology.VerdictComplete:
		return "ok"
	case topology.VerdictUnknown:
		return "?"
	case "":
		return "-"
	}
	return strings.ToUpper(string(v))
}

// WritePathText prints the node × backend matrix, then each cell that is
// not complete with where and why.
func WritePathText(w io.Writer, r *PathReport) error {
	var b strings.Builder
	verdict := "complete from every node to every backend"
	if !r.Complete {
		verdict = "NOT complete"
	}
	fmt.Fprintf(&b, "swarm path %s/%d: %d node(s), %d backend(s): %s\n\n", r.Proto, r.Port, len(r.Nodes), len(r.Backends), verdict)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "node")
	for _, be := range r.Backends {
		fmt.Fprintf(tw, "\t%s", textsafe.String(be.Label()))
	}
	fmt.Fprintln(tw)
	for _, n := range r.Nodes {
		fmt.Fprint(tw, textsafe.String(n.Name))
		for _, c := range n.Cells {
			fmt.Fprintf(tw, "\t%s", pathCellText(c.Verdict))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	b.WriteString("(rows: the node the client enters by; columns: where its balancer sends, the tasks' nodes below; -: not sent to, no task)\n")
	for _, be := range r.Backends {
		where := be.Node
		if where == "" {
			where = "no collected node"
		}
		if be.Label() == be.IP.String() {
			fmt.Fprintf(&b, "  %s on %s\n", be.IP, textsafe.String(where))
		} else {
			fmt.Fprintf(&b, "  %s = %s on %s\n", textsafe.String(be.Label()), be.IP, textsafe.String(where))
		}
	}
	for _, n := range r.Nodes {
		for i, c := range n.Cells {
			if c.Verdict == topology.VerdictComplete || c.Verdict == "" {
				continue
			}
			fmt.Fprintf(&b, "\n%s %s -> %s: %s", strings.ToUpper(string(c.Verdict)), textsafe.String(n.Name), textsafe.String(r.Backends[i].Label()), c.Code)
			if c.At != n.Name {
				fmt.Fprintf(&b, " on %s", textsafe.String(c.At))
			}
			if c.Hop != nil && c.Hop.Netns != "" {
				fmt.Fprintf(&b, " in %s", textsafe.String(c.Hop.Netns))
			}
			fmt.Fprintf(&b, ": %s\n", textsafe.String(c.Reason))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
