package inspect

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/internal/dockerns"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/topology"
)

// world builds a Docker-shaped node and tears it down after the test,
// checking that nothing is left.
func world(t *testing.T, o dockerns.Options) *dockerns.World {
	t.Helper()
	testutil.NeedRoot(t)
	o.Prefix = testutil.Prefix()
	w, err := dockerns.Build(o)
	if err != nil {
		t.Fatalf("build world: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
		if left, err := dockerns.Leftovers(w.Base); err != nil || len(left) > 0 {
			t.Errorf("left behind: %v %v", left, err)
		}
	})
	return w
}

func live(t *testing.T, w *dockerns.World, mode FirewallMode) *topology.Model {
	t.Helper()
	m, err := Live(context.Background(), Options{HostNetns: w.HostPath, NetnsDirs: []string{w.Dir}, Firewall: mode, Conntrack: true})
	if err != nil {
		t.Fatalf("live (%s): %v", mode, err)
	}
	return m
}

func v4(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() && !p.Addr().IsLoopback() {
			out = append(out, p)
		}
	}
	return out
}

// checkLinks compares the model's links with what the builder made.
func checkLinks(t *testing.T, m *topology.Model, w *dockerns.World) {
	t.Helper()
	for name, specs := range w.Expect {
		ns := m.Lookup(name)
		if ns == nil {
			t.Errorf("netns %s missing from the model", name)
			continue
		}
		if len(ns.Links) != len(specs) {
			t.Errorf("netns %s: %d links, built %d", name, len(ns.Links), len(specs))
		}
		for _, s := range specs {
			l := ns.Link(s.Name)
			if l == nil {
				t.Errorf("netns %s: link %s missing", name, s.Name)
				continue
			}
			got := dockerns.LinkSpec{Name: l.Name, Kind: l.Kind, MTU: l.MTU, Addrs: v4(l.Addrs), Master: l.Master}
			if s.MAC != "" {
				got.MAC = l.MAC.String()
			}
			if l.Peer != nil {
				got.PeerNetns, got.PeerIfname = l.Peer.Netns, l.Peer.Ifname
			}
			if l.VXLAN != nil {
				got.VNI, got.Port = l.VXLAN.ID, l.VXLAN.Port
				if !l.VXLAN.Learning || !l.VXLAN.Proxy {
					t.Errorf("netns %s: %s: learning %v proxy %v, built with both", name, l.Name, l.VXLAN.Learning, l.VXLAN.Proxy)
				}
			}
			if diff := cmp.Diff(s, got, cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
				t.Errorf("netns %s: link %s (-built +read):\n%s", name, s.Name, diff)
			}
			if !l.Up {
				t.Errorf("netns %s: link %s is down", name, l.Name)
			}
		}
	}
}

// restoredRules are the "-A" lines of the rules the builder loaded, per
// table.
func restoredRules(texts []string) map[string][]string {
	out := map[string][]string{}
	for _, text := range texts {
		table := ""
		for _, line := range strings.Split(text, "\n") {
			switch {
			case strings.HasPrefix(line, "*"):
				table = line[1:]
			case strings.HasPrefix(line, "-A "):
				out[table] = append(out[table], line)
			}
		}
	}
	return out
}

func modelRules(fw *topology.Firewall) map[string][]string {
	out := map[string][]string{}
	if fw == nil {
		return out
	}
	for _, tb := range fw.Tables {
		for _, c := range tb.Chains {
			for _, r := range c.Rules {
				out[tb.Name] = append(out[tb.Name], r.Text)
			}
		}
	}
	return out
}

func sorted(m map[string][]string) map[string][]string {
	for _, v := range m {
		sort.Strings(v)
	}
	return m
}

func TestLiveDockerWorld(t *testing.T) {
	w := world(t, dockerns.Options{Tasks: 2, EastWest: true, Listen: true,
		Ports: []dockerrules.Port{{Proto: "tcp", Published: 8080, Target: 80}, {Proto: "udp", Published: 5353, Target: 53}}})
	// A conntrack entry to find: a UDP datagram inside the first task.
	task0 := w.Tasks[0]
	testutil.SendUDP(t, w.Dir+"/"+task0.Name, netip.MustParseAddrPort("127.0.0.1:9"))
	// A per-link knob off its default, read back from the link dump.
	err := netnsx.Do(w.Dir+"/"+task0.Name, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/conf/eth0/rp_filter", []byte("2"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	m := live(t, w, FirewallAuto)
	if m.Source != "live" {
		t.Errorf("source %q", m.Source)
	}
	var names []string
	for _, ns := range m.Namespaces {
		names = append(names, ns.Name)
		for _, e := range ns.Errors {
			t.Errorf("netns %s: read error: %s", ns.Name, e)
		}
	}
	wantNames := w.Names()[1:]
	sort.Strings(wantNames)
	if diff := cmp.Diff(append([]string{"host"}, wantNames...), names); diff != "" {
		t.Errorf("namespaces (-want +got):\n%s", diff)
	}
	checkLinks(t, m, w)

	for name, texts := range w.Rules {
		ns := m.Lookup(name)
		if diff := cmp.Diff(sorted(restoredRules(texts)), sorted(modelRules(ns.Firewall))); diff != "" {
			t.Errorf("netns %s: rules (-loaded +read):\n%s", name, diff)
		}
		if ns.Firewall.Backend != "nf_tables" {
			t.Errorf("netns %s: backend %q", name, ns.Firewall.Backend)
		}
	}
	host := m.Lookup("host")
	dnat := host.Firewall.Table("nat").Chain("DOCKER-INGRESS").Rules[0]
	if dnat.Target != "DNAT" || dnat.TargetOpt("to-destination").Arg() != "172.18.0.2:8080" {
		t.Errorf("host DNAT rule: %s", dnat.Text)
	}
	sbox := m.Lookup(w.Sandbox)
	mark := sbox.Firewall.Table("mangle").Chain("PREROUTING").Rules[0]
	if mark.Target != "MARK" || mark.TargetOpt("set-xmark").Arg() != "0x100/0xffffffff" {
		t.Errorf("sandbox mark rule: %s", mark.Text)
	}
	tk := m.Lookup(task0.Name)
	redir := tk.Firewall.Table("nat").Chain("PREROUTING").Rules[0]
	if redir.Target != "REDIRECT" || redir.TargetOpt("to-ports").Arg() != "80" {
		t.Errorf("task redirect rule: %s", redir.Text)
	}

	for _, ns := range m.Namespaces {
		if ns.IPVS == nil || ns.IPVS.Available || ns.IPVS.Reason != NoIPVSReason {
			t.Errorf("netns %s: ipvs %+v, want unavailable with the reason", ns.Name, ns.IPVS)
		}
	}
	if n := countContaining(m.Notes, NoIPVSReason); n != 1 {
		t.Errorf("notes mention the missing IPVS %d times: %q", n, m.Notes)
	}

	for name, kv := range w.Sysctls {
		for k, v := range kv {
			if got := m.Lookup(name).Sysctls[k]; got != v {
				t.Errorf("netns %s: %s = %q, set %q", name, k, got, v)
			}
		}
	}
	if got := tk.Sysctls["net.ipv4.ip_forward"]; got != "0" {
		t.Errorf("task ip_forward = %q, want the new-netns default 0", got)
	}
	if got := tk.Sysctls["net.ipv4.conf.eth0.rp_filter"]; got != "2" {
		t.Errorf("task eth0 rp_filter = %q, set 2 (sysctls %v)", got, tk.Sysctls)
	}
	for _, k := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.all.route_localnet", "net.ipv4.conf.lo.route_localnet",
		"net.ipv4.conf.eth1.rp_filter", "net.netfilter.nf_conntrack_max"} {
		if _, ok := tk.Sysctls[k]; !ok {
			t.Errorf("task sysctls lack %s: %v", k, tk.Sysctls)
		}
	}

	wantSock := []topology.Socket{{Proto: "tcp", Addr: task0.IngressIP, Port: 80}, {Proto: "udp", Addr: task0.IngressIP, Port: 53}}
	if diff := cmp.Diff(wantSock, tk.Sockets, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("task sockets (-want +got):\n%s", diff)
	}
	if len(sbox.Sockets) != 0 {
		t.Errorf("sandbox has sockets: %v", sbox.Sockets)
	}
	if !slices.Contains(tk.Routes, topology.Route{Dst: topology.DefaultRoute, Gateway: netip.MustParseAddr("172.18.0.1"), Dev: "eth1"}) {
		t.Errorf("task routes: %+v", tk.Routes)
	}
	ovl := m.Lookup(w.Overlay)
	wantFDB := topology.FDB{MAC: topology.MustParseMAC(dockerns.RemoteMAC), Dev: "vxlan0", Dst: dockerns.RemoteVTEP, State: "permanent"}
	if !slices.Contains(ovl.FDB, wantFDB) {
		t.Errorf("overlay fdb %+v lacks %+v", ovl.FDB, wantFDB)
	}
	wantNeigh := topology.Neigh{IP: dockerns.RemoteIP, MAC: topology.MustParseMAC(dockerns.RemoteMAC), Dev: "vxlan0", State: "permanent"}
	if !slices.Contains(ovl.Neighbours, wantNeigh) {
		t.Errorf("overlay neighbours %+v lack %+v", ovl.Neighbours, wantNeigh)
	}
	found := false
	for _, c := range tk.Conntrack {
		if c.Proto == "udp" && c.Orig.Dst == netip.MustParseAddr("127.0.0.1") && c.Orig.DPort == 9 {
			found = true
		}
	}
	if !found {
		t.Errorf("task conntrack lacks the udp flow to 127.0.0.1:9: %+v", tk.Conntrack)
	}
	if sbox.Conntrack == nil {
		t.Errorf("sandbox conntrack nil with Conntrack on")
	}
	// The netnsids recorded name real namespaces of the model.
	for _, ns := range m.Namespaces {
		for id, name := range ns.NetnsIDs {
			if m.Lookup(name) == nil || id < 0 {
				t.Errorf("netns %s: netnsid %d -> %q", ns.Name, id, name)
			}
		}
	}
}

func countContaining(ss []string, sub string) int {
	n := 0
	for _, s := range ss {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// The two firewall readers agree rule for rule, rule counters included,
// for both Docker variants. Chain (policy) counters are not compared: the
// fresh links' multicast reports still move them between the two reads.
func TestLiveFirewallModesAgree(t *testing.T) {
	for _, v := range []dockerrules.Variant{dockerrules.Modern, dockerrules.Docker112} {
		w := world(t, dockerns.Options{Tasks: 2, Variant: v, EastWest: true, Emulate: true,
			Ports: []dockerrules.Port{{Proto: "tcp", Published: 8080, Target: 80}, {Proto: "udp", Published: 5353, Target: 53}}})
		task := w.Tasks[0]
		if v == dockerrules.Modern {
			// One datagram the task's filter INPUT drops (-p udp -j DROP),
			// so a rule counter is not zero.
			dropped := rulesHit(t, w, task.Name)
			testutil.SendUDP(t, w.Dir+"/"+w.Sandbox, netip.AddrPortFrom(task.IngressIP, 9999))
			for i := 0; rulesHit(t, w, task.Name) == dropped && i < 50; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			if rulesHit(t, w, task.Name) == dropped {
				t.Fatalf("the datagram to %s never reached the task's filter", task.IngressIP)
			}
		}
		ex, nl := stableReads(t, w)
		for i, ns := range ex.Namespaces {
			other := nl.Namespaces[i]
			if len(ns.Errors)+len(other.Errors) > 0 {
				t.Errorf("netns %s: errors exec %q netlink %q", ns.Name, ns.Errors, other.Errors)
			}
			if ns.Firewall.RuleCount() == 0 {
				continue
			}
			if ns.Firewall.Backend != "nf_tables" || other.Firewall.Backend != "nf_tables" {
				t.Errorf("netns %s: backends %q / %q", ns.Name, ns.Firewall.Backend, other.Firewall.Backend)
			}
			opts := cmp.Options{cmpopts.IgnoreFields(topology.Rule{}, "Line"), cmpopts.IgnoreFields(topology.Chain{}, "Packets", "Bytes"),
				cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})}
			if diff := cmp.Diff(ns.Firewall, other.Firewall, opts); diff != "" {
				t.Errorf("variant %d netns %s: exec vs netlink (-exec +netlink):\n%s", v, ns.Name, diff)
			}
		}
	}
}

// stableReads reads the firewall with exec, netlink and exec again, until
// no rule counter moved across the netlink read: the kernel's own traffic
// on fresh links (an IGMPv3 report leaving docker_gwbridge hits nat
// POSTROUTING) may otherwise land between the two reads.
func stableReads(t *testing.T, w *dockerns.World) (ex, nl *topology.Model) {
	t.Helper()
	ex = live(t, w, FirewallExec)
	for try := 0; ; try++ {
		nl = live(t, w, FirewallNetlink)
		after := live(t, w, FirewallExec)
		if ruleCounters(ex) == ruleCounters(after) || try == 4 {
			return ex, nl
		}
		t.Logf("rule counters moved during the netlink read (try %d), reading again", try)
		ex = after
	}
}

// ruleCounters lists every rule's counters of m, netns by netns.
func ruleCounters(m *topology.Model) string {
	var b strings.Builder
	for _, ns := range m.Namespaces {
		if ns.Firewall == nil {
			continue
		}
		for _, tb := range ns.Firewall.Tables {
			for _, c := range tb.Chains {
				for _, r := range c.Rules {
					fmt.Fprintf(&b, "%s %s %s %d %d\n", ns.Name, tb.Name, r.Text, r.Packets, r.Bytes)
				}
			}
		}
	}
	return b.String()
}

// rulesHit sums the packet counters of a namespace's filter rules, read
// with iptables-save.
func rulesHit(t *testing.T, w *dockerns.World, name string) uint64 {
	t.Helper()
	fw, err := kernelFirewall{}.ReadExec(&Target{NetnsRef: netnsRef(name, w.Dir+"/"+name)}, "")
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range fw.Table("filter").Chains {
		for _, r := range c.Rules {
			n += r.Packets
		}
	}
	return n
}

// Two worlds built the same way have the same ifindexes everywhere: the
// peers can only be told apart by asking the kernel for netnsids.
func TestLivePeersAmbiguous(t *testing.T) {
	w1 := world(t, dockerns.Options{Tasks: 1, Workers: 1})
	w2 := world(t, dockerns.Options{Tasks: 1, Workers: 1, Variant: dockerrules.Docker112})
	kept := &keptSockets{}
	links := &countingLinks{kernelLinks: kernelLinks{kept: kept}}
	m, err := Live(context.Background(), Options{HostNetns: w1.HostPath, NetnsDirs: []string{w1.Dir, w2.Dir},
		Readers: Readers{Links: links}})
	if err != nil {
		t.Fatal(err)
	}
	// The index pairs do collide across the worlds.
	sb1, sb2 := m.Lookup(w1.Sandbox).Link("eth0"), m.Lookup(w2.Sandbox).Link("eth0")
	if sb1.Index != sb2.Index || sb1.Peer.Index != sb2.Peer.Index {
		t.Skipf("the two worlds got different ifindexes (%d@%d, %d@%d): nothing ambiguous to test",
			sb1.Index, sb1.Peer.Index, sb2.Index, sb2.Peer.Index)
	}
	for _, w := range []*dockerns.World{w1, w2} {
		for name, specs := range w.Expect {
			if name == "host" && w == w2 {
				continue // not in the model
			}
			ns := m.Lookup(name)
			for _, s := range specs {
				if s.Kind != "veth" {
					continue
				}
				l := ns.Link(s.Name)
				want := [2]string{s.PeerNetns, s.PeerIfname}
				if w == w2 && s.PeerNetns == "host" {
					want = [2]string{} // w2's host is not read: must stay unresolved
				}
				if got := [2]string{l.Peer.Netns, l.Peer.Ifname}; got != want {
					t.Errorf("netns %s: %s peer %v, built %v", name, s.Name, got, want)
				}
			}
		}
	}
	if links.asked.Load() == 0 {
		t.Error("the kernel was never asked for a netnsid: nothing was ambiguous")
	}
	// The questions went through the sockets the link reads kept, and
	// Live closed them.
	if kept.total == 0 || len(kept.fds) != 0 {
		t.Errorf("%d sockets kept, %d still open after Live", kept.total, len(kept.fds))
	}
}

type countingLinks struct {
	kernelLinks
	asked atomic.Int64
}

func (c *countingLinks) NetnsID(from, to NetnsRef) (int, error) {
	c.asked.Add(1)
	return c.kernelLinks.NetnsID(from, to)
}

// netnsIDs asks through kernelLinks' session, as Live does with the real
// reader.
func (c *countingLinks) netnsIDs() netnsIDs {
	return &countingSession{c: c, s: c.kernelLinks.netnsIDs()}
}

type countingSession struct {
	c *countingLinks
	s netnsIDs
}

func (c *countingSession) ask(from, to NetnsRef) (int, error) {
	c.c.asked.Add(1)
	return c.s.ask(from, to)
}

func (c *countingSession) close() { c.s.close() }

// A namespace whose rules are in the legacy x_tables backend: auto falls
// back to iptables-legacy-save, exec notices iptables-nft-save's warning
// and does the same, netlink alone says it cannot.
func TestLiveLegacyBackend(t *testing.T) {
	if _, err := exec.LookPath("iptables-legacy-restore"); err != nil {
		t.Skip("no iptables-legacy-restore on this machine")
	}
	w := world(t, dockerns.Options{Tasks: 1})
	path := w.Dir + "/legacy0"
	if err := netnsx.Create(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := netnsx.Destroy(path); err != nil {
			t.Error(err)
		}
	})
	rules := dockerrules.Task(netip.MustParseAddr("10.0.0.9"), []dockerrules.Port{{Proto: "tcp", Published: 8080, Target: 80}}, dockerrules.Modern)
	cmd := exec.Command("iptables-legacy-restore", "-w")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := netnsx.Output(path, cmd); err != nil {
		t.Fatalf("iptables-legacy-restore: %v %s", err, out)
	}
	want := sorted(restoredRules([]string{rules}))
	for _, mode := range []FirewallMode{FirewallAuto, FirewallExec} {
		m := live(t, w, mode)
		ns := m.Lookup("legacy0")
		if len(ns.Errors) > 0 || ns.Firewall == nil {
			t.Fatalf("%s: errors %q", mode, ns.Errors)
		}
		if ns.Firewall.Backend != "legacy" {
			t.Errorf("%s: backend %q, want legacy", mode, ns.Firewall.Backend)
		}
		if diff := cmp.Diff(want, sorted(modelRules(ns.Firewall))); diff != "" {
			t.Errorf("%s: rules (-loaded +read):\n%s", mode, diff)
		}
		if n := countContaining(m.Notes, "legacy0"); n != 0 {
			t.Errorf("%s: notes about a normal legacy namespace: %q", mode, m.Notes)
		}
	}
	m := live(t, w, FirewallNetlink)
	if errs := m.Lookup("legacy0").Errors; len(errs) != 1 || !strings.Contains(errs[0], "legacy") {
		t.Errorf("netlink on a legacy namespace: errors %q", errs)
	}
}
