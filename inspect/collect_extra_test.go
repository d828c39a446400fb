package inspect

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/topology"
)

// TestCollectXfrmGated: without xfrm_user no ip xfrm runs (it would open a
// NETLINK_XFRM socket and load it), and NOTES.txt says why; the counters,
// which load nothing, are written.
func TestCollectXfrmGated(t *testing.T) {
	dir := t.TempDir()
	r := &fakeRunner{out: hostOutputs(t), installed: allTools}
	gate := &modGate{there: map[string]bool{"ip_vs": true, "nfnetlink": true, "nf_tables": true, "nf_conntrack": true,
		"nf_conntrack_netlink": true, "inet_diag": true, "tcp_diag": true, "udp_diag": true}}
	o := CollectOptions{HostNetns: selfNetns, NetnsDirs: []string{}, Runner: r, NoDocker: true, Modules: gate, IPVS: fakeProbe{ok: true}}
	if err := Collect(context.Background(), o, dir); err != nil {
		t.Fatal(err)
	}
	if ran := strings.Join(r.ran, "\n"); strings.Contains(ran, "xfrm") {
		t.Errorf("ran ip xfrm with xfrm_user missing:\n%s", ran)
	}
	notes, _ := os.ReadFile(filepath.Join(dir, BundleNotes))
	if !strings.Contains(string(notes), "ip-xfrm-state.txt, ip-xfrm-policy.txt not collected in any namespace: xfrm states and policies not read: xfrm_user is not loaded (fake)") {
		t.Errorf("notes:\n%s", notes)
	}
	for _, f := range []string{BundleSNMP, BundleNetstat, BundleConntrackStat, BundleLinkStats, BundleIptablesLegacy} {
		if _, err := os.Stat(filepath.Join(dir, "netns/host", f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	m, err := Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	if h := m.Namespaces[0]; h.Xfrm != nil || h.Counters == nil || h.OtherFirewall == nil || len(h.Errors) > 0 {
		t.Errorf("host: xfrm %v (want not collected), counters %v, other firewall %v, errors %q", h.Xfrm, h.Counters, h.OtherFirewall, h.Errors)
	}
}

// TestCollectOtherBackend: iptables-legacy-save runs beside the nf_tables
// variant of iptables-save only; where it does not run, NOTES.txt says
// why, and where it prints nothing there is no file.
func TestCollectOtherBackend(t *testing.T) {
	for _, tc := range []struct {
		name, version string
		legacyOut     string
		tools         func(map[string]bool)
		file          bool
		note          string
	}{
		{"nf_tables and legacy tables", "iptables-save v1.8.9 (nf_tables)\n", "", nil, true, ""},
		{"nf_tables, no legacy table", "iptables-save v1.8.9 (nf_tables)\n", "# nothing\n", nil, false, ""},
		{"legacy variant", "iptables-save v1.8.7 (legacy)\n", "", nil, false,
			"iptables-legacy-save.txt not collected: iptables-save is the legacy variant, iptables-save.txt holds the legacy rules"},
		{"no iptables-legacy-save", "iptables-save v1.8.9 (nf_tables)\n", "", func(m map[string]bool) { delete(m, "iptables-legacy-save") }, false,
			"iptables-legacy-save.txt not collected in any namespace: iptables-legacy-save is not installed"},
		{"no iptables-save", "", "", func(m map[string]bool) { delete(m, "iptables-save") }, false,
			"iptables-legacy-save.txt not collected in any namespace: neither is iptables-save.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := hostOutputs(t)
			out["|iptables-save -V"] = tc.version
			if tc.legacyOut != "" {
				out[selfNetns+"|"+cmdIptablesOther.String()] = "" // printed nothing
			}
			tools := maps.Clone(allTools)
			if tc.tools != nil {
				tc.tools(tools)
			}
			r := &fakeRunner{out: out, installed: tools}
			o := CollectOptions{HostNetns: selfNetns, NetnsDirs: []string{}, Runner: r, NoDocker: true, Modules: kmod.Allow{}, IPVS: fakeProbe{ok: true}}
			if err := Collect(context.Background(), o, dir); err != nil {
				t.Fatal(err)
			}
			_, err := os.Stat(filepath.Join(dir, "netns/host", BundleIptablesLegacy))
			if (err == nil) != tc.file {
				t.Errorf("iptables-legacy-save.txt written %v, want %v", err == nil, tc.file)
			}
			notes, _ := os.ReadFile(filepath.Join(dir, BundleNotes))
			if tc.note != "" && !strings.Contains(string(notes), tc.note) || tc.note == "" && strings.Contains(string(notes), BundleIptablesLegacy) {
				t.Errorf("notes, want %q:\n%s", tc.note, notes)
			}
		})
	}
	// -V failing is a note too.
	dir := t.TempDir()
	r := &fakeRunner{out: hostOutputs(t), installed: allTools, fail: map[string]error{"|iptables-save -V": errors.New("exit status 2")}}
	o := CollectOptions{HostNetns: selfNetns, NetnsDirs: []string{}, Runner: r, NoDocker: true, Modules: kmod.Allow{}, IPVS: fakeProbe{ok: true}}
	if err := Collect(context.Background(), o, dir); err != nil {
		t.Fatal(err)
	}
	if notes, _ := os.ReadFile(filepath.Join(dir, BundleNotes)); !strings.Contains(string(notes), "iptables-legacy-save.txt not collected in any namespace: iptables-save -V: exit status 2") {
		t.Errorf("notes:\n%s", notes)
	}
}

// TestCollectRedactsKeys: whatever ip prints, no key reaches the bundle.
func TestCollectRedactsKeys(t *testing.T) {
	dir := t.TempDir()
	out := hostOutputs(t)
	keyed := cmdoutFile(t, "text-only/keys-ip-xfrm-state.txt")
	out[selfNetns+"|"+cmdXfrmState.String()] = keyed
	r := &fakeRunner{out: out, installed: allTools}
	o := CollectOptions{HostNetns: selfNetns, NetnsDirs: []string{}, Runner: r, NoDocker: true, Modules: kmod.Allow{}, IPVS: fakeProbe{ok: true}}
	if err := Collect(context.Background(), o, dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "netns/host", BundleXfrmState))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"000102030405060708090a0b0c0d0e0f10111213", "00112233445566778899aabbccddeeff"} {
		if strings.Contains(string(got), key) {
			t.Errorf("a key reached the bundle:\n%s", got)
		}
	}
	m, err := Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	if x := m.Namespaces[0].Xfrm; x == nil || len(x.States) != 2 || x.States[0].Algos[0].KeyBits != 160 || len(m.Namespaces[0].Errors) > 0 {
		t.Errorf("read back: %+v, errors %q", x, m.Namespaces[0].Errors)
	}
}

// TestMergeIPVSStats: the counters go to the same services and
// destinations of ipvsadm.txt; what that lacks (the files were written a
// moment apart) is said, not added.
func TestMergeIPVSStats(t *testing.T) {
	dest := func(a string) *topology.IPVSDest { return &topology.IPVSDest{Addr: netip.MustParseAddr(a), Port: 80} }
	table := &topology.IPVS{Available: true, Services: []*topology.IPVSService{{FWMark: 256, Dests: []*topology.IPVSDest{dest("10.0.0.5")}}}}
	st := func(n uint64) *topology.IPVSStats { return &topology.IPVSStats{Conns: n, InPkts: n} }
	stats := &topology.IPVS{Available: true, Services: []*topology.IPVSService{
		{FWMark: 256, Stats: st(3), Dests: []*topology.IPVSDest{{Addr: netip.MustParseAddr("10.0.0.5"), Port: 80, Stats: st(2)}, {Addr: netip.MustParseAddr("10.0.0.6"), Port: 80, Stats: st(1)}}},
		{Proto: "tcp", Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Stats: st(1)},
	}}
	errs := mergeIPVSStats("f", table, stats)
	s := table.Services[0]
	if len(errs) != 2 || s.Stats.Conns != 3 || s.Dests[0].Stats.Conns != 2 || len(s.Dests) != 1 || len(table.Services) != 1 {
		t.Errorf("errors %q, service %+v", errs, s)
	}
}
