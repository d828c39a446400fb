// Package diff says what changed on a node between two readings of it
// (`meshtrace diff A B`): rules added, removed or moved, chain policies,
// IPVS services, real servers and weights, links, routes, neighbours, FDB
// entries, sysctls, listening sockets, xfrm SAs and policies, Docker tasks,
// and every counter that moved (topology.DiffCounters). It answers "it
// broke between 10:00 and 10:05" from two bundles (or a bundle and a live
// read). It is pure: two models in, a Result out.
//
// Namespaces are matched by name. What one side did not collect is never a
// change: it is listed in NotCompared, per namespace and area, saying which
// side lacks it.
package diff

import (
	"maps"
	"slices"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// SchemaVersion is the version of the JSON Result. (For docs/json.md,
// issue 16: the shape is
//
//	{"schema_version": 1, "a": "bundle:DIR", "b": "mesh:NAME/node0",
//	 "changes": [{"netns": "host", "kind": "rule-added", "op": "added",
//	              "summary": "filter INPUT #1 added: -A INPUT -p udp -m udp --dport 4789 -j DROP",
//	              "object": "filter INPUT", "table": "filter", "chain": "INPUT",
//	              "rule": "-A INPUT …", "position": 1, "backend": "nf_tables"},
//	             {"netns": "host", "kind": "counter-moved", "summary": "…", "auto": true,
//	              "counter": {topology.CounterDelta}}, …],
//	 "not_compared": [{"netns": "host", "area": "xfrm", "reason": "not collected in A"}]}
//
// Every change has netns ("" for the node's Docker tasks seen on no
// namespace of it), kind, op (added, removed, changed, moved) and summary;
// object names what changed (a chain "TABLE CHAIN", a link, a route's
// destination, an IPVS service or real server, a sysctl, an SA, a task),
// field the attribute that changed (mtu, weight, policy, state, …) with
// before and after as text. Rule changes carry table, chain, rule (the
// rule as iptables-save prints it), backend, position (1-based, in B; in A
// for a removed rule) and from (a moved rule's position in A). Auto
// marks what the kernel changes on its own, from traffic or
// autoconfiguration (counters, learned neighbours and FDB entries,
// multicast neighbours, IPv6 link-local addresses, the conntrack count):
// reported, but not a change of the node's configuration.)
const SchemaVersion = 1

// Kind is what kind of thing changed.
type Kind string

// Change kinds.
const (
	NetnsAdded     Kind = "netns-added"
	NetnsRemoved   Kind = "netns-removed"
	RuleAdded      Kind = "rule-added"
	RuleRemoved    Kind = "rule-removed"
	RuleMoved      Kind = "rule-moved" // the same rule at another place among the chain's others
	ChainAdded     Kind = "chain-added"
	ChainRemoved   Kind = "chain-removed"
	PolicyChanged  Kind = "policy-changed"
	BackendChanged Kind = "backend-changed" // the iptables backend the rules were read from
	CounterMoved   Kind = "counter-moved"
	IPVSChanged    Kind = "ipvs-changed"
	LinkChanged    Kind = "link-changed"
	RouteChanged   Kind = "route-changed"
	NeighChanged   Kind = "neigh-changed"
	FDBChanged     Kind = "fdb-changed"
	SysctlChanged  Kind = "sysctl-changed"
	SocketChanged  Kind = "socket-changed"
	XfrmChanged    Kind = "xfrm-changed"
	TaskChanged    Kind = "task-changed"
)

// Op is what happened to the object.
type Op string

// Ops.
const (
	Added   Op = "added"
	Removed Op = "removed"
	Changed Op = "changed"
	Moved   Op = "moved"
)

// Change is one difference between A and B.
type Change struct {
	Netns   string `json:"netns"`
	Kind    Kind   `json:"kind"`
	Op      Op     `json:"op"`
	Summary string `json:"summary"`
	Object  string `json:"object,omitempty"`
	Field   string `json:"field,omitempty"`
	Before  string `json:"before,omitempty"`
	After   string `json:"after,omitempty"`

	Backend  string `json:"backend,omitempty"`
	Table    string `json:"table,omitempty"`
	Chain    string `json:"chain,omitempty"`
	Rule     string `json:"rule,omitempty"`
	Position int    `json:"position,omitempty"`
	From     int    `json:"from,omitempty"`

	Counter *topology.CounterDelta `json:"counter,omitempty"`
	// Auto: the kernel makes this change on its own (see SchemaVersion).
	Auto bool `json:"auto,omitempty"`
}

// NotCompared is an area of a namespace that one side (or both) did not
// collect: nothing is said about it.
type NotCompared struct {
	Netns  string `json:"netns"`
	Area   string `json:"area"`
	Reason string `json:"reason"`
}

// Areas of NotCompared.
const (
	AreaNetns       = "netns" // a namespace on one side only, the other's set not known to be whole
	AreaRules       = "rules"
	AreaLegacy      = "legacy-rules"
	AreaIPVS        = "ipvs"
	AreaLinks       = "links"
	AreaLinkDetails = "link-details" // kinds and VXLAN attributes (ip -d addr)
	AreaRoutes      = "routes"
	AreaNeigh       = "neighbours"
	AreaFDB         = "fdb"
	AreaSysctls     = "sysctls"
	AreaSockets     = "sockets"
	AreaXfrm        = "xfrm"
	AreaTasks       = "tasks"
	areaTablePref   = "rules: table " // + the table's name
)

// Result is what Compare found.
type Result struct {
	SchemaVersion int           `json:"schema_version"`
	A             string        `json:"a"`
	B             string        `json:"b"`
	Changes       []Change      `json:"changes"`
	NotCompared   []NotCompared `json:"not_compared"`
	// order are the namespaces in the order Compare met them (the text's).
	order []string
}

// Configuration is the number of changes the kernel does not make on its
// own (see Change.Auto).
func (r *Result) Configuration() int {
	n := 0
	for _, c := range r.Changes {
		if !c.Auto {
			n++
		}
	}
	return n
}

// Exit statuses of `meshtrace diff`, beside path's (3 broken, 4 unknown)
// and doctor's (1 findings, 4 not checked).
const (
	ExitSame    = 0 // nothing changed but what the kernel changes on its own, and everything was compared
	ExitUnknown = 4 // nothing changed among what was compared, but something was not compared
	ExitChanged = 5 // the configuration changed
)

// Exit is the command's exit status: ExitChanged when a change the
// kernel does not make on its own was found; else ExitUnknown when something was not
// compared; else ExitSame. Counters that moved are reported and never
// decide: a live node's counters always move.
func (r *Result) Exit() int {
	switch {
	case r.Configuration() > 0:
		return ExitChanged
	case len(r.NotCompared) > 0:
		return ExitUnknown
	}
	return ExitSame
}

// Compare says what changed from a to b (both classified or not; only
// what was read is compared). Namespaces come in b's order, then those
// only in a; within a namespace, changes come by area (firewall, IPVS,
// links, routes, neighbours, FDB, sysctls, sockets, xfrm, tasks) and
// counters last. It is pure.
func Compare(a, b *topology.Model) *Result {
	r := &Result{SchemaVersion: SchemaVersion, Changes: []Change{}, NotCompared: []NotCompared{}}
	if a == nil || b == nil {
		return r
	}
	r.A, r.B = a.Source, b.Source
	tasks := compareTasks(a, b)
	for _, nb := range b.Namespaces {
		na := a.Lookup(nb.Name)
		r.order = append(r.order, nb.Name)
		c := &netnsDiff{netns: nb.Name, a: a, b: b}
		switch {
		case na == nil && !a.NetnsComplete:
			c.skip(AreaNetns, "in B only; A's set of namespaces is not known to be whole ("+wholeWhy(a)+"), so whether it was added is not known")
		case na == nil:
			c.add(Change{Kind: NetnsAdded, Op: Added, Object: nb.Name, Summary: "netns " + nb.Name + " added" + roleOf(nb)})
		default:
			c.compare(na, nb)
		}
		c.take(tasks)
		r.Changes = append(r.Changes, c.changes...)
		r.NotCompared = append(r.NotCompared, c.notCompared...)
		r.Changes = append(r.Changes, c.counters...)
	}
	for _, na := range a.Namespaces {
		if b.Lookup(na.Name) == nil {
			r.order = append(r.order, na.Name)
			c := &netnsDiff{netns: na.Name}
			if b.NetnsComplete {
				c.add(Change{Kind: NetnsRemoved, Op: Removed, Object: na.Name, Summary: "netns " + na.Name + " removed" + roleOf(na)})
			} else {
				c.skip(AreaNetns, "in A only; B's set of namespaces is not known to be whole ("+wholeWhy(b)+"), so whether it was removed is not known")
			}
			c.take(tasks)
			r.Changes = append(r.Changes, c.changes...)
			r.NotCompared = append(r.NotCompared, c.notCompared...)
		}
	}
	for _, t := range tasks.changes { // on no namespace of either side
		r.Changes = append(r.Changes, t)
	}
	r.NotCompared = append(r.NotCompared, tasks.notCompared...)
	return r
}

// wholeWhy says why a model's set of namespaces is not known to be whole.
func wholeWhy(m *topology.Model) string {
	for _, n := range m.Notes {
		if strings.HasPrefix(n, "NAMESPACES.txt lists") {
			return n
		}
	}
	return "its bundle has no NAMESPACES.txt: assembled by hand, or by a meshtrace before it wrote one"
}

func roleOf(ns *topology.Namespace) string {
	if ns.Role == "" || ns.Role == topology.RoleUnknown {
		return ""
	}
	return " (" + string(ns.Role) + ")"
}

// netnsDiff collects one namespace's changes.
type netnsDiff struct {
	netns       string
	a, b        *topology.Model
	changes     []Change
	counters    []Change
	notCompared []NotCompared
	// cameOrWent are the links only one side has: their neighbours and
	// FDB entries are not listed again.
	cameOrWent map[string]bool
}

func (d *netnsDiff) add(c Change) {
	c.Netns = d.netns
	d.changes = append(d.changes, c)
}

// collected records area as not compared when either side is missing;
// it reports whether both are there.
func (d *netnsDiff) collected(area string, inA, inB bool) bool {
	if inA && inB {
		return true
	}
	d.skip(area, notCollectedIn(inA, inB))
	return false
}

// skipOnce is skip, once per area.
func (d *netnsDiff) skipOnce(area, reason string) {
	for _, n := range d.notCompared {
		if n.Area == area {
			return
		}
	}
	d.skip(area, reason)
}

func (d *netnsDiff) skip(area, reason string) {
	d.notCompared = append(d.notCompared, NotCompared{Netns: d.netns, Area: area, Reason: reason})
}

func notCollectedIn(inA, inB bool) string {
	switch {
	case !inA && !inB:
		return "not collected in A nor in B"
	case !inA:
		return "not collected in A"
	}
	return "not collected in B"
}

// take moves the task changes that belong to this namespace into it.
func (d *netnsDiff) take(t *taskDiff) {
	keep := t.changes[:0]
	for _, c := range t.changes {
		if c.Netns == d.netns {
			d.changes = append(d.changes, c)
		} else {
			keep = append(keep, c)
		}
	}
	t.changes = keep
}

func (d *netnsDiff) compare(a, b *topology.Namespace) {
	d.firewall(a, b)
	d.ipvs(a, b)
	d.links(a, b)
	d.routes(a, b)
	d.neighbours(a, b)
	d.fdb(a, b)
	d.sysctls(a, b)
	d.sockets(a, b)
	d.xfrm(a, b)
	d.counterDeltas(a, b)
}

// unique is names without repeats, in the order they first came.
func unique(names []string) []string {
	seen := map[string]bool{}
	return slices.DeleteFunc(names, func(n string) bool {
		dup := seen[n]
		seen[n] = true
		return dup
	})
}

// ordered maps keys to groups and remembers the order keys came in.
type ordered[V any] struct {
	m    map[string]*V
	keys []string
}

// at is k's group, made empty the first time.
func (o *ordered[V]) at(k string) *V {
	if o.m == nil {
		o.m = map[string]*V{}
	}
	v := o.m[k]
	if v == nil {
		v = new(V)
		o.m[k] = v
		o.keys = append(o.keys, k)
	}
	return v
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
