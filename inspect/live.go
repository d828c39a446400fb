package inspect

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/topology"
)

// FirewallMode is how the live reader reads a namespace's firewall.
type FirewallMode string

// Firewall reading modes of Options.Firewall.
const (
	FirewallAuto    FirewallMode = "auto"    // nf_tables in-process, iptables-save when that fails (legacy backend)
	FirewallExec    FirewallMode = "exec"    // iptables-save -c inside each netns
	FirewallNetlink FirewallMode = "netlink" // nf_tables in-process only
)

// Options configure a live read.
type Options struct {
	// HostNetns is the namespace file that plays "host" ("" = HostPath():
	// PID 1's, or our own where /proc/1 is hidden).
	HostNetns string
	// NetnsDirs are the directories of namespace files to read (nil =
	// DefaultNetnsDirs).
	NetnsDirs []string
	// Firewall is FirewallAuto (""), FirewallExec or FirewallNetlink.
	Firewall FirewallMode
	// Conntrack reads every namespace's conntrack table.
	Conntrack bool
	// Counters reads every namespace's counters (topology.Counters).
	Counters bool
	// Workers bounds how many namespaces are read at once (0 = 4 per CPU).
	Workers int
	// Readers are the kernel readers; nil fields get the real ones.
	Readers Readers
	// Modules is the module gate the real readers ask before a request
	// that would make the kernel load a missing module (nil = kmod.Host();
	// kmod.Allow{} for --allow-module-load). A read it stops is not
	// collected, with a note saying why.
	Modules kmod.Gate
}

// Readers are the kernel dependencies of Live, one small interface each,
// so the assembly (fan-out, peer resolution, error collection) is tested
// with fakes. Every method reads one namespace, named by a Target.
type Readers struct {
	Netns     NetnsLister
	Links     LinkReader
	Firewall  FirewallReader
	IPVS      IPVSReader
	Conntrack ConntrackReader
	Sysctl    SysctlReader
	Sockets   SocketReader
	Xfrm      XfrmReader
	Counters  CountersReader
}

// Target is the namespace being read. The real readers share what they
// open on it (one set of netlink sockets per namespace) through it; Live
// closes it when the namespace is done.
type Target struct {
	NetnsRef
	res   targetRes
	hints targetHints
	mods  kmod.Gate // see gate
}

// targetHints are counts one real reader learns in passing that let
// another skip work: a namespace with no conntrack entries or no sockets
// need not be dumped (each dump walks a node-wide kernel hash table). -1:
// unknown.
type targetHints struct {
	conntrack int // net.netfilter.nf_conntrack_count
	sockets   int // TCP+UDP sockets in use, from sockstat
}

func newTarget(ref NetnsRef) *Target {
	return &Target{NetnsRef: ref, hints: targetHints{conntrack: -1, sockets: -1}}
}

// NetnsLister finds the namespaces to read (Discover).
type NetnsLister interface {
	Discover(hostPath string, dirs []string) ([]NetnsRef, error)
}

// netnsFiles is the real NetnsLister.
type netnsFiles struct{}

func (netnsFiles) Discover(hostPath string, dirs []string) ([]NetnsRef, error) {
	return Discover(hostPath, dirs)
}

// LinkData is what a LinkReader reads from one namespace.
type LinkData struct {
	// Sysctls are per-link knobs the link dump carries
	// (net.ipv4.conf.LINK.rp_filter, .route_localnet); merged into the
	// namespace's Sysctls.
	Sysctls    topology.Sysctls
	Links      []*topology.Link
	Routes     []topology.Route
	Neighbours []topology.Neigh
	FDB        []topology.FDB
}

// LinkReader reads links (with addresses, masters, veth peers as ifindex +
// netnsid, VXLAN attributes), main-table routes, neighbours and bridge/VXLAN
// FDB entries. It returns what it could read together with an error naming
// what it could not; no links at all is an error.
type LinkReader interface {
	ReadLinks(t *Target) (*LinkData, error)
	// NetnsID returns the netnsid namespace from has assigned to
	// namespace to (-1: none), to tell apart veth peers that the
	// ifindexes alone leave ambiguous.
	NetnsID(from, to NetnsRef) (int, error)
}

// FirewallReader reads the IPv4 iptables ruleset of a namespace, in
// process from nf_tables (ReadNetlink, which fails with nft.ErrLegacy on a
// legacy-backend namespace) or by running iptables-save -c in it
// (ReadExec; backend "legacy" prefers iptables-legacy-save).
type FirewallReader interface {
	ReadNetlink(t *Target) (*topology.Firewall, error)
	ReadExec(t *Target, backend topology.FirewallBackend) (*topology.Firewall, error)
}

// IPVSReader reads a namespace's IPVS table; a kernel without IPVS is
// IPVS{Available: false} with the reason, not an error.
type IPVSReader interface {
	ReadIPVS(t *Target) (*topology.IPVS, error)
}

// ConntrackReader reads a namespace's IPv4 conntrack table.
type ConntrackReader interface {
	ReadConntrack(t *Target) ([]topology.Conntrack, error)
}

// SysctlReader reads the forwarding-related sysctls of a namespace.
type SysctlReader interface {
	ReadSysctls(t *Target) (topology.Sysctls, error)
}

// SocketReader reads a namespace's listening TCP and bound UDP sockets.
type SocketReader interface {
	ReadSockets(t *Target) ([]topology.Socket, error)
}

// Live reads this node (or the namespaces Options point at) into a model:
// the host namespace first, then every namespace file of the netns
// directories in Discover order, read in parallel. A namespace that fails
// to read, wholly or in part, carries the failures in its Errors; only
// failing to discover the namespaces or to read the host's links is fatal.
// Veth peers are resolved across the model. Roles are left to
// topology.Classify.
func Live(ctx context.Context, o Options) (*topology.Model, error) {
	r, refs, err := o.begin()
	if err != nil {
		return nil, err
	}
	m := &topology.Model{Source: "live", Namespaces: make([]*topology.Namespace, len(refs)), NetnsComplete: true}
	notes := make([][]string, len(refs))
	var hostErr error
	workers := o.Workers
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(refs))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				ns, n, fatal := readNamespace(r, &o, refs[i])
				m.Namespaces[i], notes[i] = ns, n
				if i == 0 && fatal != nil {
					hostErr = fatal
				}
			}
		}()
	}
	var cerr error
feed:
	for i := range refs {
		if cerr = ctx.Err(); cerr != nil {
			break
		}
		select {
		case jobs <- i:
		case <-ctx.Done():
			cerr = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	defer release(r.Links)
	release(r.Sysctl)
	if cerr != nil {
		return nil, fmt.Errorf("live read: %w", cerr)
	}
	if hostErr != nil {
		return nil, fmt.Errorf("host netns %s: %w", refs[0].Path, hostErr)
	}
	resolvePeers(m, refs, r.Links)
	m.Notes = collectNotes(m, notes)
	return m, nil
}

// release lets go what a real reader kept for the whole read
// (kernelSysctls' procfs instances, kernelLinks' sockets).
func release(reader any) {
	if r, ok := reader.(interface{ release() }); ok {
		r.release()
	}
}

func (r Readers) withDefaults() Readers {
	k := kernelReaders()
	if r.Netns == nil {
		r.Netns = netnsFiles{}
	}
	if r.Links == nil {
		r.Links = k.Links
	}
	if r.Firewall == nil {
		r.Firewall = k.Firewall
	}
	if r.IPVS == nil {
		r.IPVS = k.IPVS
	}
	if r.Conntrack == nil {
		r.Conntrack = k.Conntrack
	}
	if r.Sysctl == nil {
		r.Sysctl = k.Sysctl
	}
	if r.Sockets == nil {
		r.Sockets = k.Sockets
	}
	if r.Xfrm == nil {
		r.Xfrm = newXfrmReader()
	}
	if r.Counters == nil {
		r.Counters = newCountersReader()
	}
	return r
}

// readNamespace reads one namespace with every reader. It returns the
// namespace, notes for the model, and a non-nil error when the namespace
// could not be read at all (no links), which is fatal for the host.
func readNamespace(r Readers, o *Options, ref NetnsRef) (*topology.Namespace, []string, error) {
	ns := &topology.Namespace{NetnsRef: ref.NetnsRef, Inode: ref.Inode, Links: []*topology.Link{}}
	t := newTarget(ref)
	t.mods = o.Modules
	defer t.close()
	var notes []string
	fail := failer(ns, &notes)
	// Sysctls first: the real reader enters the namespace once for them
	// and for opening the sockets every other reader uses.
	s, err := r.Sysctl.ReadSysctls(t)
	ns.Sysctls = s // what could be read, also on error
	if err != nil {
		fail("sysctls", err)
		if unreachable(err) {
			// The namespace is gone or cannot be entered: every other
			// reader would fail the same way.
			return ns, nil, err
		}
	}
	ld, err := r.Links.ReadLinks(t)
	if ld != nil {
		if ld.Links != nil {
			ns.Links = ld.Links
		}
		ns.Routes, ns.Neighbours, ns.FDB = ld.Routes, ld.Neighbours, ld.FDB
		// Read, even if empty: nil means "not collected" in the model.
		if ns.Routes == nil {
			ns.Routes = []topology.Route{}
		}
		if ns.Neighbours == nil {
			ns.Neighbours = []topology.Neigh{}
		}
		if ns.FDB == nil {
			ns.FDB = []topology.FDB{}
		}
		if len(ld.Sysctls) > 0 && ns.Sysctls == nil {
			ns.Sysctls = topology.Sysctls{}
		}
		for k, v := range ld.Sysctls {
			ns.Sysctls[k] = v
		}
	}
	if err != nil {
		fail("links", err)
		if ld == nil || len(ld.Links) == 0 || unreachable(err) {
			return ns, nil, err
		}
	}
	if so, err := r.Sockets.ReadSockets(t); err != nil {
		fail("sockets", err)
	} else {
		ns.Sockets = so
	}
	notes = append(notes, readFirewallIPVS(r, o.Firewall, t, ns, fail)...)
	if o.Conntrack {
		if c, err := r.Conntrack.ReadConntrack(t); err != nil {
			fail("conntrack", err)
		} else {
			if c == nil {
				c = []topology.Conntrack{}
			}
			ns.Conntrack = c
		}
	}
	notes = append(notes, readExtra(r, o, t, ns, fail)...)
	return ns, notes, nil
}

// unreachable reports whether err says the namespace itself could not be
// opened or entered.
func unreachable(err error) bool {
	var ne *netnsx.Error
	return errors.As(err, &ne) && (ne.Op == "open" || ne.Op == "enter")
}

// collectNotes gathers the per-namespace notes and one line per distinct
// reason IPVS was unavailable.
func collectNotes(m *topology.Model, perNS [][]string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	var noIPVS []string
	for _, ns := range m.Namespaces {
		if ns.IPVS != nil && !ns.IPVS.Available && ns.IPVS.Reason != "" && !seen["ipvs:"+ns.IPVS.Reason] {
			seen["ipvs:"+ns.IPVS.Reason] = true
			noIPVS = append(noIPVS, ns.IPVS.Reason)
		}
	}
	sort.Strings(noIPVS)
	for _, r := range noIPVS {
		add(r)
	}
	for _, ns := range perNS {
		for _, n := range ns {
			add(n)
		}
	}
	return out
}
