package inspect

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/topology"
)

// nsPair is two namespaces of a test, host and b (b in Dir, as Docker's are
// in /run/docker/netns), joined by a veth nsPair: va 10.77.0.1/24 in host,
// vb 10.77.0.2/24 in b. IPv6 is off in both, so that nothing but the
// test's own packets moves their counters.
type nsPair struct {
	Host, Dir, B string
}

var (
	pairA = netip.MustParseAddr("10.77.0.1")
	pairB = netip.MustParseAddr("10.77.0.2")
)

func newPair(t *testing.T) *nsPair {
	t.Helper()
	testutil.NeedRoot(t)
	base := t.TempDir()
	p := &nsPair{Host: filepath.Join(base, "host"), Dir: filepath.Join(base, "netns")}
	p.B = filepath.Join(p.Dir, "b")
	if err := os.Mkdir(p.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{p.Host, p.B} {
		if err := netnsx.Create(path); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := netnsx.Destroy(path); err != nil {
				t.Error(err)
			}
		})
		run(t, path, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
		run(t, path, "ip", "link", "set", "lo", "up")
	}
	hb, err := netnsx.Open(p.B)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	err = netnsx.Do(p.Host, func() error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "va"}, PeerName: "vb", PeerNamespace: netlink.NsFd(int(hb))})
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, p.Host, "ip", "addr", "add", pairA.String()+"/24", "dev", "va")
	run(t, p.B, "ip", "addr", "add", pairB.String()+"/24", "dev", "vb")
	run(t, p.Host, "ip", "link", "set", "va", "up")
	run(t, p.B, "ip", "link", "set", "vb", "up")
	return p
}

// run runs a command inside the namespace at path.
func run(t *testing.T, path, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := netnsx.Output(path, cmd)
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func (p *nsPair) options() Options {
	return Options{HostNetns: p.Host, NetnsDirs: []string{p.Dir}}
}

func (p *nsPair) snapshot(t *testing.T) *topology.Model {
	t.Helper()
	m, err := Snapshot(context.Background(), p.options(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range m.Namespaces {
		if len(ns.Errors) > 0 {
			t.Fatalf("netns %s: %q", ns.Name, ns.Errors)
		}
	}
	return m
}

// udp sends n datagrams from the namespace at path; a send the kernel
// refuses (no route) is not an error: the refusal is what is counted.
func udp(t *testing.T, path string, to netip.AddrPort, n int) {
	t.Helper()
	err := netnsx.Do(path, func() error {
		for range n {
			c, err := net.Dial("udp4", to.String())
			if err != nil {
				if errors.Is(err, unix.ENETUNREACH) {
					continue // counted: IpOutNoRoutes (__ip4_datagram_connect)
				}
				return err
			}
			_, err = c.Write([]byte("x"))
			c.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// eventually waits until cond holds: packets sent to a neighbour not yet
// resolved wait for its ARP answer, and a loaded machine delays them more.
// After 10 s it fails, saying what never happened.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s never happened", what)
		}
	}
}

// delta finds the one change of a counter in b.
func delta(ds []topology.CounterDelta, kind topology.CounterKind, object, counter string) (int64, bool) {
	for _, d := range ds {
		if d.Netns == "b" && d.Kind == kind && d.Object == object && d.Counter == counter {
			return d.Delta, true
		}
	}
	return 0, false
}

// TestSnapshotCountersMove makes real traffic and checks the counters
// that must move by exactly what was sent, in the namespace that did it:
// UDP to a closed port (UdpNoPorts, the ICMP port unreachable b sends,
// counted by type only), datagrams dropped by a rule, segments dropped by
// the INPUT policy, a datagram without a route, and the link's counters.
func TestSnapshotCountersMove(t *testing.T) {
	p := newPair(t)
	// b drops udp/9999 by a rule, tcp by its INPUT policy, and tracks
	// connections (the conntrack match hooks conntrack in b).
	run(t, p.B, "iptables", "-A", "INPUT", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	run(t, p.B, "iptables", "-A", "INPUT", "-p", "udp", "--dport", "9999", "-j", "DROP")
	run(t, p.B, "iptables", "-A", "INPUT", "-p", "udp", "-j", "ACCEPT")
	run(t, p.B, "iptables", "-A", "INPUT", "-p", "icmp", "-j", "ACCEPT")
	run(t, p.B, "iptables", "-P", "INPUT", "DROP")
	before := p.snapshot(t)
	udp(t, p.Host, netip.AddrPortFrom(pairB, 7777), 3)
	udp(t, p.Host, netip.AddrPortFrom(pairB, 9999), 2)
	udp(t, p.B, netip.AddrPortFrom(netip.MustParseAddr("203.0.113.9"), 53), 1)
	err := netnsx.Do(p.Host, func() error {
		c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(pairB, 81).String(), 300*time.Millisecond)
		if err == nil {
			c.Close()
			return errors.New("tcp/81 answered, want dropped by b's policy")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var after *topology.Model
	var ds []topology.CounterDelta
	eventually(t, "3 port unreachables back at host", func() bool {
		after = p.snapshot(t)
		ds = topology.DiffCounters(before, after)
		for _, d := range ds {
			if d.Netns == "host" && d.Counter == "IcmpInDestUnreachs" && d.Delta == 3 {
				return true
			}
		}
		return false
	})
	for _, w := range []struct {
		kind            topology.CounterKind
		object, counter string
		want            int64
	}{
		{topology.CounterSNMP, "", "UdpNoPorts", 3},
		{topology.CounterSNMP, "", "IcmpMsgOutType3", 3},
		{topology.CounterSNMP, "", "IcmpOutDestUnreachs", 3},
		{topology.CounterSNMP, "", "IpOutNoRoutes", 1},
		{topology.CounterRule, "filter INPUT #2", "packets", 2},
		{topology.CounterRule, "filter INPUT #3", "packets", 3},
	} {
		if got, ok := delta(ds, w.kind, w.object, w.counter); !ok || got != w.want {
			t.Errorf("%s %s %s moved %d (found %v), want %d", w.kind, w.object, w.counter, got, ok, w.want)
		}
	}
	// The SYN and its retransmissions, by the policy; nothing else.
	if got, ok := delta(ds, topology.CounterPolicy, "filter INPUT", "packets"); !ok || got < 1 {
		t.Errorf("INPUT policy moved %d (%v), want the SYNs", got, ok)
	}
	if got, _ := delta(ds, topology.CounterLink, "vb", "rx_packets"); got < 6 {
		t.Errorf("vb rx_packets moved %d, want at least the 6 datagrams and SYN", got)
	}
	for _, d := range ds {
		if d.Netns == "b" && d.Kind == topology.CounterSNMP && (d.Counter == "UdpInErrors" || d.Counter == "IpExtInNoRoutes") {
			t.Errorf("%s moved: %+v", d.Counter, d)
		}
		if d.Netns == "host" && d.Kind == topology.CounterSNMP && d.Counter == "UdpNoPorts" {
			t.Errorf("host's UdpNoPorts moved: %+v", d)
		}
	}
	if c := after.Lookup("b").Counters; c.Conntrack == nil || c.Conntrack["entries"] == 0 {
		t.Errorf("b's conntrack counters: %v", c.Conntrack)
	}
	// Nothing moves without traffic.
	if ds := topology.DiffCounters(after, p.snapshot(t)); len(ds) != 0 {
		t.Errorf("counters moved without traffic: %+v", ds)
	}
}

// TestPolicyCountersBothReaders: a chain policy's counter is read by the
// nf_tables reader, by iptables-save -c, and from the legacy backend.
func TestPolicyCountersBothReaders(t *testing.T) {
	if _, err := exec.LookPath("iptables-legacy"); err != nil {
		t.Skip("no iptables-legacy on this machine")
	}
	p := newPair(t)
	run(t, p.B, "iptables", "-P", "INPUT", "DROP")
	udp(t, p.Host, netip.AddrPortFrom(pairB, 7777), 2)
	tg := newTarget(netnsRef("b", p.B))
	defer tg.close()
	eventually(t, "2 datagrams dropped by b's policy", func() bool {
		fw, err := kernelFirewall{}.ReadExec(tg, "")
		return err == nil && fw.Table("filter").Chain("INPUT").Packets == 2
	})
	for mode, read := range map[string]func() (*topology.Firewall, error){
		"netlink": func() (*topology.Firewall, error) { return kernelFirewall{}.ReadNetlink(tg) },
		"exec":    func() (*topology.Firewall, error) { return kernelFirewall{}.ReadExec(tg, "") },
	} {
		fw, err := read()
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if c := fw.Table("filter").Chain("INPUT"); c == nil || c.Policy != "DROP" || c.Packets != 2 || c.Bytes != 2*29 {
			t.Errorf("%s: filter INPUT %+v, want policy DROP with 2 packets, 58 bytes", mode, c)
		}
	}
	run(t, p.Host, "iptables-legacy", "-P", "INPUT", "DROP")
	udp(t, p.B, netip.AddrPortFrom(pairA, 7777), 3)
	th := newTarget(netnsRef("host", p.Host))
	defer th.close()
	eventually(t, "3 datagrams dropped by host's legacy policy", func() bool {
		fw, _, err := kernelFirewall{}.ReadLegacy(th)
		return err == nil && fw != nil && fw.Table("filter").Chain("INPUT").Packets == 3
	})
	m, err := Live(context.Background(), p.options())
	if err != nil {
		t.Fatal(err)
	}
	h := m.Lookup("host")
	if h.Firewall == nil || h.Firewall.Backend != "legacy" || h.OtherFirewall != nil {
		t.Fatalf("host: firewall %+v other %+v, want legacy alone", h.Firewall, h.OtherFirewall)
	}
	if c := h.Firewall.Table("filter").Chain("INPUT"); c == nil || c.Packets != 3 {
		t.Errorf("legacy filter INPUT %+v, want 3 packets", c)
	}
}

// TestLiveOtherBackend: Docker's rules in nf_tables while the legacy
// backend holds rules for the same packets. Live reads both (auto and
// exec), the legacy rule drops and counts what it should, and collect
// writes iptables-legacy-save.txt there and nowhere else.
func TestLiveOtherBackend(t *testing.T) {
	if _, err := exec.LookPath("iptables-legacy"); err != nil {
		t.Skip("no iptables-legacy on this machine")
	}
	p := newPair(t)
	run(t, p.B, "iptables", "-A", "INPUT", "-p", "udp", "--dport", "4789", "-j", "ACCEPT")
	run(t, p.B, "iptables-legacy", "-A", "INPUT", "-p", "udp", "--dport", "4789", "-j", "DROP")
	run(t, p.Host, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "7946", "-j", "ACCEPT")
	udp(t, p.Host, netip.AddrPortFrom(pairB, 4789), 2)
	tb := newTarget(netnsRef("b", p.B))
	defer tb.close()
	eventually(t, "2 datagrams dropped by the legacy rule", func() bool {
		fw, _, err := kernelFirewall{}.ReadLegacy(tb)
		return err == nil && fw != nil && fw.Table("filter").Chain("INPUT").Rules[0].Packets == 2
	})
	for _, mode := range []FirewallMode{FirewallAuto, FirewallExec} {
		o := p.options()
		o.Firewall = mode
		m, err := Live(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		b := m.Lookup("b")
		if len(b.Errors) > 0 || b.Firewall == nil || b.Firewall.Backend != "nf_tables" || b.OtherFirewall == nil || b.OtherFirewall.Backend != "legacy" {
			t.Fatalf("%s: b errors %q firewall %+v other %+v", mode, b.Errors, b.Firewall, b.OtherFirewall)
		}
		if _, marked := legacyMarker(b.Firewall); marked {
			t.Errorf("%s: the firewall still says the legacy tables are not read: %+v", mode, b.Firewall.Unparsed)
		}
		rules := b.OtherFirewall.Table("filter").Chain("INPUT").Rules
		if len(rules) != 1 || !strings.Contains(rules[0].Text, "--dport 4789 -j DROP") || rules[0].Packets != 2 {
			for _, r := range rules {
				t.Logf("%s: legacy INPUT [%d] %s", mode, r.Packets, r.Text)
			}
			t.Errorf("%s: legacy INPUT has %d rules, want the DROP with 2 packets", mode, len(rules))
		}
		if h := m.Lookup("host"); h.OtherFirewall != nil {
			t.Errorf("%s: host has no legacy table, other %+v", mode, h.OtherFirewall)
		}
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := Collect(context.Background(), CollectOptions{HostNetns: p.Host, NetnsDirs: []string{p.Dir}, NoDocker: true}, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "netns/host", BundleIptablesLegacy)); err == nil {
		t.Error("iptables-legacy-save.txt written for host, whose legacy backend is empty")
	}
	bm, err := Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b := bm.Lookup("b"); b.OtherFirewall == nil || b.OtherFirewall.Backend != "legacy" || b.OtherFirewall.RuleCount() != 1 {
		t.Errorf("bundle: b other %+v", b.OtherFirewall)
	}
}

// xfrmPolicies are the policies of fixtures/cmdout/record-xfrm.sh.
var xfrmPolicies = [][]string{
	{"src", "192.0.2.10/32", "dst", "192.0.2.11/32", "proto", "udp", "dport", "4789", "dir", "out", "mark", "0xd0c4e3", "mask", "0xffffffff",
		"tmpl", "src", "192.0.2.10", "dst", "192.0.2.11", "proto", "esp", "spi", "0x5e4c7f1a", "reqid", "13681891", "mode", "transport"},
	{"src", "10.1.0.0/16", "dst", "10.2.0.0/16", "dir", "fwd", "priority", "100",
		"tmpl", "src", "198.51.100.2", "dst", "198.51.100.1", "proto", "esp", "reqid", "7", "mode", "tunnel", "level", "use"},
	{"src", "0.0.0.0/0", "dst", "203.0.113.0/24", "proto", "icmp", "type", "3", "code", "4", "dir", "out", "action", "block"},
	{"src", "0.0.0.0/0", "dst", "203.0.113.7/32", "proto", "gre", "key", "70000", "dir", "out", "priority", "5",
		"tmpl", "src", "192.0.2.10", "dst", "203.0.113.7", "proto", "ah", "spi", "0x100", "reqid", "2", "mode", "transport"},
	{"src", "0.0.0.0/0", "dst", "0.0.0.0/0", "proto", "tcp", "sport", "22", "dir", "in", "flag", "localok", "icmp"},
	{"src", "fd00::/64", "dst", "fd00:1::/64", "proto", "udp", "dir", "out", "if_id", "0x2a",
		"tmpl", "src", "fd00::1", "dst", "fd00:1::1", "proto", "esp", "spi", "0x200", "reqid", "3", "mode", "tunnel"},
	{"src", "192.0.2.0/24", "dst", "192.0.2.0/24", "dir", "out", "ptype", "sub",
		"tmpl", "src", "192.0.2.10", "dst", "192.0.2.20", "proto", "comp", "reqid", "4", "mode", "transport"},
	{"src", "10.9.0.0/16", "dst", "10.8.0.0/16", "dev", "va", "dir", "out"},
}

// TestReadXfrmLive: the SAs and policies read over NETLINK_XFRM are what
// `ip -s xfrm policy` and `ip -s xfrm state` print of the same namespace
// (this kernel refuses every SA: there are none, read as none).
func TestReadXfrmLive(t *testing.T) {
	p := newPair(t)
	for _, pol := range xfrmPolicies {
		run(t, p.Host, "ip", append([]string{"xfrm", "policy", "add"}, pol...)...)
	}
	tg := newTarget(netnsRef("host", p.Host))
	defer tg.close()
	x, err := kernelXfrm{}.ReadXfrm(tg)
	if err != nil {
		t.Fatal(err)
	}
	policies, bad, err := parse.XfrmPolicy("ip", strings.NewReader(run(t, p.Host, "ip", "-s", "xfrm", "policy")))
	if err != nil || len(bad) > 0 {
		t.Fatalf("ip -s xfrm policy: %v %+v", err, bad)
	}
	states, bad, err := parse.XfrmState("ip", strings.NewReader(run(t, p.Host, "ip", "-s", "xfrm", "state")))
	if err != nil || len(bad) > 0 {
		t.Fatalf("ip -s xfrm state: %v %+v", err, bad)
	}
	want := &topology.Xfrm{States: states, Policies: policies}
	if d := cmp.Diff(want, x, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); d != "" {
		t.Errorf("ip vs netlink (-ip +netlink):\n%s", d)
	}
	if len(x.Policies) != len(xfrmPolicies) || x.States == nil {
		t.Errorf("%d policies, states %v", len(x.Policies), x.States)
	}
	// Nothing in b.
	tb := newTarget(netnsRef("b", p.B))
	defer tb.close()
	if x, err := (kernelXfrm{}).ReadXfrm(tb); err != nil || x.States == nil || len(x.States)+len(x.Policies) != 0 {
		t.Errorf("b: %+v %v, want read and empty", x, err)
	}
}

// TestCollectExtraMatchesLive: collect → bundle reads back what the live
// reader reads of the same namespaces: the xfrm policies, the legacy
// backend's rules, and every counter (the namespaces hold still: IPv6 off,
// no traffic during the reads).
func TestCollectExtraMatchesLive(t *testing.T) {
	if _, err := exec.LookPath("iptables-legacy"); err != nil {
		t.Skip("no iptables-legacy on this machine")
	}
	p := newPair(t)
	for _, pol := range xfrmPolicies[:len(xfrmPolicies)-1] { // the last one's dev: ip prints its name, a bundle's
		run(t, p.Host, "ip", append([]string{"xfrm", "policy", "add"}, pol...)...)
	}
	run(t, p.B, "iptables", "-A", "INPUT", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	run(t, p.B, "iptables-legacy", "-A", "INPUT", "-p", "udp", "--dport", "4789", "-j", "DROP")
	udp(t, p.Host, netip.AddrPortFrom(pairB, 4789), 2)
	udp(t, p.Host, netip.AddrPortFrom(pairB, 7777), 2)
	tb := newTarget(netnsRef("b", p.B))
	eventually(t, "b counted the 4 datagrams", func() bool { // a fixed sleep lost the race under load
		c, err := (kernelCounters{}).ReadCounters(tb)
		return err == nil && c.SNMP["UdpNoPorts"] >= 2 && c.Links["vb"]["rx_packets"] >= 4
	})
	tb.close()
	o := p.options()
	o.Counters = true
	extra := func(m *topology.Model) any {
		out := map[string]any{}
		for _, ns := range m.Namespaces {
			out[ns.Name] = []any{ns.Xfrm, ns.OtherFirewall, ns.Counters, ns.Errors}
		}
		return out
	}
	opts := []cmp.Option{cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}), cmpopts.IgnoreFields(topology.Rule{}, "Line"),
		cmpopts.IgnoreFields(topology.Firewall{}, "Unparsed"), cmpopts.IgnoreFields(topology.Counters{}, "Notes")}
	read := func() *topology.Model {
		m, err := Live(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	_, b, after := settled(t, read, extra, CollectOptions{HostNetns: p.Host, NetnsDirs: []string{p.Dir}, NoDocker: true}, opts...)
	if d := cmp.Diff(extra(after), extra(b), opts...); d != "" {
		t.Errorf("live vs bundle (-live +bundle):\n%s", d)
	}
	h, bb := after.Lookup("host"), after.Lookup("b")
	if len(h.Xfrm.Policies) != len(xfrmPolicies)-1 || bb.OtherFirewall == nil || bb.Counters.SNMP["UdpNoPorts"] < 2 ||
		bb.Counters.Conntrack == nil || bb.Counters.Links["vb"]["rx_packets"] < 4 {
		t.Errorf("the namespaces lack what the comparison is about: host %+v, b other %+v counters %+v", h.Xfrm, bb.OtherFirewall, bb.Counters)
	}
}
