package inspect

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/meshtrace/meshtrace/inspect/nft"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/topology"
)

// Fakes of every reader, keyed by netns name.

type fakeNetns struct {
	refs []NetnsRef
	err  error
}

var _ NetnsLister = (*fakeNetns)(nil)

func (f *fakeNetns) Discover(string, []string) ([]NetnsRef, error) { return f.refs, f.err }

type fakeLinks struct {
	data  map[string]*LinkData
	errs  map[string]error
	ids   map[[2]string]int // (from, to) -> netnsid
	mu    sync.Mutex
	asked map[[2]string]int
	delay time.Duration
	cur   atomic.Int32
	peak  atomic.Int32
}

var _ LinkReader = (*fakeLinks)(nil)

func (f *fakeLinks) ReadLinks(t *Target) (*LinkData, error) {
	n := f.cur.Add(1)
	defer f.cur.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(f.delay)
	d := f.data[t.Name]
	if d == nil {
		d = &LinkData{Links: []*topology.Link{{Index: 1, Name: "lo", Kind: "loopback", MTU: 65536, Up: true}}}
	}
	return cloneLinkData(d), f.errs[t.Name]
}

func (f *fakeLinks) NetnsID(from, to NetnsRef) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.asked == nil {
		f.asked = map[[2]string]int{}
	}
	k := [2]string{from.Name, to.Name}
	f.asked[k]++
	if err := f.errs["netnsid:"+from.Name]; err != nil {
		return -1, err
	}
	if id, ok := f.ids[k]; ok {
		return id, nil
	}
	return -1, nil
}

func cloneLinkData(d *LinkData) *LinkData {
	c := *d
	c.Links = nil
	for _, l := range d.Links {
		lc := *l
		if l.Peer != nil {
			p := *l.Peer
			lc.Peer = &p
		}
		c.Links = append(c.Links, &lc)
	}
	return &c
}

type fakeFirewall struct {
	netlink, exec map[string]*topology.Firewall
	netlinkErr    map[string]error
	execErr       map[string]error
	mu            sync.Mutex
	calls         []string
}

var _ FirewallReader = (*fakeFirewall)(nil)

func (f *fakeFirewall) record(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeFirewall) ReadNetlink(t *Target) (*topology.Firewall, error) {
	f.record("netlink " + t.Name)
	if err := f.netlinkErr[t.Name]; err != nil {
		return nil, err
	}
	return f.netlink[t.Name], nil
}

func (f *fakeFirewall) ReadExec(t *Target, backend topology.FirewallBackend) (*topology.Firewall, error) {
	f.record("exec " + t.Name + " " + string(backend))
	if err := f.execErr[t.Name]; err != nil {
		return nil, err
	}
	fw := *f.exec[t.Name]
	return &fw, nil
}

type fakeSimple struct {
	errs  map[string]error
	calls atomic.Int32
}

var (
	_ IPVSReader      = (*fakeSimple)(nil)
	_ ConntrackReader = (*fakeSimple)(nil)
	_ SysctlReader    = (*fakeSimple)(nil)
	_ SocketReader    = (*fakeSimple)(nil)
)

func (f *fakeSimple) ReadIPVS(t *Target) (*topology.IPVS, error) {
	f.calls.Add(1)
	if err := f.errs["ipvs:"+t.Name]; err != nil {
		return nil, err
	}
	return &topology.IPVS{Available: false, Reason: NoIPVSReason, Services: []*topology.IPVSService{}}, nil
}

func (f *fakeSimple) ReadConntrack(t *Target) ([]topology.Conntrack, error) {
	f.calls.Add(1)
	if err := f.errs["conntrack:"+t.Name]; err != nil {
		return nil, err
	}
	if t.Name == "host" {
		return []topology.Conntrack{{Proto: "tcp", State: "ESTABLISHED"}}, nil
	}
	return nil, nil
}

func (f *fakeSimple) ReadSysctls(t *Target) (topology.Sysctls, error) {
	f.calls.Add(1)
	return topology.Sysctls{"net.ipv4.ip_forward": map[bool]string{true: "1", false: "0"}[t.Name == "host"]}, f.errs["sysctl:"+t.Name]
}

func (f *fakeSimple) ReadSockets(t *Target) ([]topology.Socket, error) {
	f.calls.Add(1)
	if err := f.errs["sockets:"+t.Name]; err != nil {
		return nil, err
	}
	return []topology.Socket{{Proto: "tcp", Addr: netip.MustParseAddr("0.0.0.0"), Port: 22}}, nil
}

func refs(names ...string) []NetnsRef {
	out := []NetnsRef{{NetnsRef: topology.NetnsRef{Name: "host", Path: "/fake/host"}, Inode: 1}}
	for i, n := range names {
		out = append(out, NetnsRef{NetnsRef: topology.NetnsRef{Name: n, Path: "/fake/netns/" + n}, Inode: uint64(i + 2)})
	}
	return out
}

func fwWith(rule string) *topology.Firewall {
	return &topology.Firewall{Backend: "nf_tables", Tables: []*topology.Table{{Name: "nat", Chains: []*topology.Chain{
		{Name: "PREROUTING", Policy: "ACCEPT", Rules: []*topology.Rule{{Chain: "PREROUTING", Text: rule}}}}}}}
}

type fakes struct {
	netns  *fakeNetns
	links  *fakeLinks
	fw     *fakeFirewall
	simple *fakeSimple
}

func newFakes(names ...string) *fakes {
	f := &fakes{
		netns:  &fakeNetns{refs: refs(names...)},
		links:  &fakeLinks{data: map[string]*LinkData{}, errs: map[string]error{}},
		fw:     &fakeFirewall{netlink: map[string]*topology.Firewall{}, exec: map[string]*topology.Firewall{}, netlinkErr: map[string]error{}, execErr: map[string]error{}},
		simple: &fakeSimple{errs: map[string]error{}},
	}
	for _, r := range f.netns.refs {
		f.fw.netlink[r.Name] = fwWith("-A PREROUTING -j " + r.Name)
		f.fw.exec[r.Name] = fwWith("-A PREROUTING -j exec-" + r.Name)
	}
	return f
}

func (f *fakes) options() Options {
	return Options{Conntrack: true, Readers: Readers{Netns: f.netns, Links: f.links, Firewall: f.fw,
		IPVS: f.simple, Conntrack: f.simple, Sysctl: f.simple, Sockets: f.simple, Xfrm: emptyExtra{}, Counters: emptyExtra{}}}
}

func TestLiveAssembles(t *testing.T) {
	f := newFakes("ingress_sbox", "1-abcdefghij", "09cd513d96a2")
	m, err := Live(context.Background(), f.options())
	if err != nil {
		t.Fatal(err)
	}
	if m.Source != "live" {
		t.Errorf("source %q", m.Source)
	}
	var names []string
	for _, ns := range m.Namespaces {
		names = append(names, ns.Name)
		if len(ns.Errors) > 0 {
			t.Errorf("netns %s: errors %q", ns.Name, ns.Errors)
		}
		if got := ns.Firewall.Table("nat").Chain("PREROUTING").Rules[0].Text; got != "-A PREROUTING -j "+ns.Name {
			t.Errorf("netns %s: firewall from %q, want the netlink reader's", ns.Name, got)
		}
		if ns.Conntrack == nil {
			t.Errorf("netns %s: conntrack nil with Conntrack on", ns.Name)
		}
		if len(ns.Sockets) != 1 || ns.IPVS == nil || ns.Sysctls["net.ipv4.ip_forward"] == "" {
			t.Errorf("netns %s: sockets %v ipvs %v sysctls %v", ns.Name, ns.Sockets, ns.IPVS, ns.Sysctls)
		}
	}
	if diff := cmp.Diff([]string{"host", "ingress_sbox", "1-abcdefghij", "09cd513d96a2"}, names); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if h := m.Namespaces[0]; h.Path != "/fake/host" || h.Inode != 1 || len(h.Conntrack) != 1 {
		t.Errorf("host: path %q inode %d conntrack %v", h.Path, h.Inode, h.Conntrack)
	}
	if len(m.Notes) != 1 || !strings.Contains(m.Notes[0], NoIPVSReason) {
		t.Errorf("notes %q: want one line about the missing IPVS", m.Notes)
	}

	o := f.options()
	o.Conntrack = false
	m, err = Live(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range m.Namespaces {
		if ns.Conntrack != nil {
			t.Errorf("netns %s: conntrack %v read with Conntrack off", ns.Name, ns.Conntrack)
		}
	}
}

func TestLiveErrorsStayInTheirNamespace(t *testing.T) {
	f := newFakes("a", "gone", "c")
	f.simple.errs["sockets:a"] = errors.New("sock_diag: permission denied")
	f.simple.errs["conntrack:c"] = errors.New("ctnetlink: not supported")
	f.simple.errs["sysctl:c"] = errors.New("net.ipv4.conf.x.rp_filter: i/o error")
	f.fw.netlinkErr["c"] = errors.New("nft: dump: boom")
	f.fw.execErr["c"] = errors.New("iptables-save: not found")
	gone := &netnsx.Error{Op: "open", Path: "/fake/netns/gone", Err: errors.New("no such file or directory")}
	f.simple.errs["sysctl:gone"] = gone
	f.links.errs["gone"] = gone
	before := f.simple.calls.Load()
	m, err := Live(context.Background(), f.options())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, ns := range m.Namespaces {
		got[ns.Name] = ns.Errors
	}
	want := map[string][]string{
		"host": nil,
		"a":    {"netns a: sockets: sock_diag: permission denied"},
		"gone": {"netns gone: sysctls: netns /fake/netns/gone: open: no such file or directory"},
		"c": {"netns c: sysctls: net.ipv4.conf.x.rp_filter: i/o error",
			"netns c: firewall: nf_tables: nft: dump: boom; iptables-save: iptables-save: not found",
			"netns c: conntrack: ctnetlink: not supported"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	// "gone" could not be entered: no other reader ran there after the
	// first (4 readers for each of the three other namespaces, 1 there).
	if n := f.simple.calls.Load() - before; n != 3*4+1 {
		t.Errorf("%d simple reader calls, want 13", n)
	}
	if c := m.Lookup("c"); c.Sysctls["net.ipv4.ip_forward"] != "0" {
		t.Errorf("netns c: the sysctls read before the failure were dropped: %v", c.Sysctls)
	}
	if a := m.Lookup("a"); a.Sockets != nil || a.Firewall == nil {
		t.Errorf("netns a: sockets %v firewall %v", a.Sockets, a.Firewall)
	}
}

func TestLiveFatal(t *testing.T) {
	f := newFakes("a")
	f.links.errs["host"] = &netnsx.Error{Op: "enter", Path: "/fake/host", Err: errors.New("operation not permitted")}
	if _, err := Live(context.Background(), f.options()); err == nil || !strings.Contains(err.Error(), "host netns /fake/host") {
		t.Errorf("host unreadable: err %v", err)
	}
	f = newFakes("a")
	f.netns.err = errors.New("host netns /x: no such file")
	if _, err := Live(context.Background(), f.options()); err == nil || !strings.Contains(err.Error(), "/x") {
		t.Errorf("discovery failure: err %v", err)
	}
	f = newFakes("a")
	o := f.options()
	o.Firewall = "iptables"
	if _, err := Live(context.Background(), o); err == nil || !strings.Contains(err.Error(), `"iptables"`) {
		t.Errorf("bad firewall mode: err %v", err)
	}
	// A partial link read of the host (no FDB) is not fatal.
	f = newFakes("a")
	f.links.errs["host"] = errors.New("fdb list: interrupted")
	m, err := Live(context.Background(), f.options())
	if err != nil || len(m.Namespaces[0].Errors) != 1 {
		t.Errorf("partial host read: err %v, model %v", err, m)
	}
}

func TestLiveParallelKeepsOrder(t *testing.T) {
	var names []string
	for i := range 40 {
		names = append(names, fmt.Sprintf("ns%02d", 39-i))
	}
	f := newFakes(names...)
	f.links.delay = 2 * time.Millisecond
	o := f.options()
	o.Workers = 4
	m, err := Live(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for i, ns := range m.Namespaces[1:] {
		if ns.Name != names[i] {
			t.Fatalf("namespace %d is %s, want %s", i+1, ns.Name, names[i])
		}
	}
	if p := f.links.peak.Load(); p < 2 || p > 4 {
		t.Errorf("peak concurrency %d, want 2..4 with 4 workers", p)
	}
}

func TestLiveCanceled(t *testing.T) {
	f := newFakes("a", "b", "c")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Live(ctx, f.options()); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

func TestReadFirewallModes(t *testing.T) {
	legacy := &nft.LegacyError{NetNS: "/fake/netns/a", Tables: []string{"nat"}}
	for _, tc := range []struct {
		name        string
		mode        FirewallMode
		netlinkErr  error
		execErr     error
		wantCalls   []string
		wantRule    string
		wantBackend topology.FirewallBackend
		wantNote    bool
		wantErr     bool
	}{
		{name: "auto", mode: FirewallAuto, wantCalls: []string{"netlink a"}, wantRule: "-A PREROUTING -j a", wantBackend: "nf_tables"},
		{name: "auto legacy", mode: FirewallAuto, netlinkErr: legacy, wantCalls: []string{"netlink a", "exec a legacy"},
			wantRule: "-A PREROUTING -j exec-a", wantBackend: "legacy"},
		{name: "auto nft broken", mode: FirewallAuto, netlinkErr: errors.New("boom"), wantCalls: []string{"netlink a", "exec a "},
			wantRule: "-A PREROUTING -j exec-a", wantBackend: "nf_tables", wantNote: true},
		{name: "auto both fail", mode: FirewallAuto, netlinkErr: errors.New("boom"), execErr: errors.New("no iptables-save"),
			wantCalls: []string{"netlink a", "exec a "}, wantErr: true},
		{name: "exec", mode: FirewallExec, wantCalls: []string{"exec a "}, wantRule: "-A PREROUTING -j exec-a", wantBackend: "nf_tables"},
		{name: "netlink", mode: FirewallNetlink, wantCalls: []string{"netlink a"}, wantRule: "-A PREROUTING -j a", wantBackend: "nf_tables"},
		{name: "netlink legacy", mode: FirewallNetlink, netlinkErr: legacy, wantCalls: []string{"netlink a"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakes("a")
			f.fw.netlinkErr["a"], f.fw.execErr["a"] = tc.netlinkErr, tc.execErr
			if tc.wantBackend == "legacy" {
				f.fw.exec["a"].Backend = ""
			}
			fw, note, err := readFirewall(f.fw, &Target{NetnsRef: f.netns.refs[1]}, tc.mode)
			if diff := cmp.Diff(tc.wantCalls, f.fw.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				if tc.execErr != nil && !strings.Contains(err.Error(), "no iptables-save") {
					t.Errorf("error %v does not say why exec failed", err)
				}
				return
			}
			if got := fw.Tables[0].Chains[0].Rules[0].Text; got != tc.wantRule || fw.Backend != tc.wantBackend {
				t.Errorf("got %q backend %q, want %q %q", got, fw.Backend, tc.wantRule, tc.wantBackend)
			}
			if (note != "") != tc.wantNote || (note != "" && !strings.Contains(note, "netns a")) {
				t.Errorf("note %q", note)
			}
		})
	}
}
