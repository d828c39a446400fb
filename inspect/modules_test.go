package inspect

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshtrace/meshtrace/internal/kmod"
)

// modGate is a module gate over a set of present modules; it counts the
// questions.
type modGate struct {
	there map[string]bool
	asked int
}

var _ kmod.Gate = (*modGate)(nil)

func (g *modGate) Present(m string) (bool, string) {
	g.asked++
	if g.there[m] {
		return true, "loaded (fake)"
	}
	return false, "not loaded (fake)"
}

// absent is the error a real reader returns for need behind a gate that
// has none of its modules.
func absent(need kmod.Need) error { return need.Check(&modGate{}) }

// countingIPVSKernel counts the requests that would reach the kernel.
type countingIPVSKernel struct {
	fakeIPVSKernel
	lookups, opens int
}

func (k *countingIPVSKernel) HasIPVS(t *Target) (bool, error) {
	k.lookups++
	return k.fakeIPVSKernel.HasIPVS(t)
}

func (k *countingIPVSKernel) Open(t *Target) (IPVSClient, error) {
	k.opens++
	return k.fakeIPVSKernel.Open(t)
}

// TestReadIPVSGate: with ip_vs missing the reader asks generic netlink
// nothing (the lookup would load ip_vs) and says why IPVS is unavailable.
func TestReadIPVSGate(t *testing.T) {
	k := &countingIPVSKernel{fakeIPVSKernel: fakeIPVSKernel{has: true, client: ingressTables()}}
	got, err := NewIPVSReader(k).ReadIPVS(&Target{mods: &modGate{}})
	if err != nil {
		t.Fatal(err)
	}
	if k.lookups != 0 || k.opens != 0 {
		t.Errorf("%d family lookups, %d opens with ip_vs missing, want none", k.lookups, k.opens)
	}
	if got.Available || got.Reason != "kernel has no IPVS: ip_vs is not loaded (fake)" || got.Services == nil {
		t.Errorf("ipvs %+v, want unavailable because ip_vs is not loaded", got)
	}
	got, err = NewIPVSReader(k).ReadIPVS(&Target{mods: &modGate{there: map[string]bool{"ip_vs": true}}})
	if err != nil || !got.Available || len(got.Services) != 2 || k.lookups != 1 || k.opens != 1 {
		t.Errorf("ip_vs loaded: %+v %v after %d lookups %d opens, want the table", got, err, k.lookups, k.opens)
	}
}

// TestLiveNotesSkippedReads: a read skipped for a module's sake is "not
// collected" (nil) with one note for the node, never an error of the
// namespace and never an empty list.
func TestLiveNotesSkippedReads(t *testing.T) {
	f := newFakes("a", "b")
	for _, ns := range []string{"host", "a", "b"} {
		f.simple.errs["sockets:"+ns] = absent(kmod.NeedSockets)
		f.simple.errs["conntrack:"+ns] = absent(kmod.NeedConntrack)
		f.fw.netlinkErr[ns] = absent(kmod.NeedNFTables)
		f.fw.execErr[ns] = absent(kmod.NeedNFTables)
	}
	m, err := Live(context.Background(), f.options())
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range m.Namespaces {
		if len(ns.Errors) > 0 || ns.Sockets != nil || ns.Conntrack != nil || ns.Firewall != nil {
			t.Errorf("netns %s: errors %q sockets %v conntrack %v firewall %v, want not collected and no error",
				ns.Name, ns.Errors, ns.Sockets, ns.Conntrack, ns.Firewall)
		}
	}
	for _, want := range []string{
		"listening sockets not read: inet_diag is not loaded (fake)",
		"conntrack table not read: nf_conntrack is not loaded (fake)",
		"nf_tables ruleset not read: nfnetlink is not loaded (fake)",
	} {
		n := 0
		for _, note := range m.Notes {
			if strings.Contains(note, want) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("notes %q: %d lines with %q, want one for the node", m.Notes, n, want)
		}
	}
}

// TestReadFirewallNoNFTables: without nf_tables no rule can be an
// nf_tables one, so the firewall is read as legacy (iptables-legacy-save,
// which loads nothing); when that cannot be done safely either, the read
// is skipped with the reason, not failed.
func TestReadFirewallNoNFTables(t *testing.T) {
	f := newFakes("a")
	f.fw.netlinkErr["a"] = absent(kmod.NeedNFTables)
	f.fw.exec["a"].Backend = ""
	fw, note, err := readFirewall(f.fw, &Target{NetnsRef: f.netns.refs[1]}, FirewallAuto)
	if err != nil || note != "" || fw.Backend != "legacy" {
		t.Errorf("got %v backend %q note %q, want the legacy read without a note", err, fw.Backend, note)
	}
	if d := cmp.Diff([]string{"netlink a", "exec a legacy"}, f.fw.calls); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
	f.fw.execErr["a"] = absent(kmod.NeedNFTables)
	_, _, err = readFirewall(f.fw, &Target{NetnsRef: f.netns.refs[1]}, FirewallAuto)
	var ae *kmod.AbsentError
	if !errors.As(err, &ae) || strings.Contains(err.Error(), "iptables-save: ") {
		t.Errorf("err %v, want the module's reason alone", err)
	}
}

// TestIptablesNFTVariant reads `iptables-save -V` as the installed
// variants print it (iptables 1.8.9 here, 1.6 from its source).
func TestIptablesNFTVariant(t *testing.T) {
	for _, tc := range []struct {
		out string
		nft bool
	}{
		{"iptables-save v1.8.9 (nf_tables)\n", true},
		{"iptables-nft-save v1.8.9 (nf_tables)\n", true},
		{"iptables-save v1.8.9 (legacy)\n", false},
		{"iptables-save v1.6.1\n", false},
	} {
		if got := nftVariant([]byte(tc.out)); got != tc.nft {
			t.Errorf("%q: nf_tables %v, want %v", tc.out, got, tc.nft)
		}
	}
}

// TestCollectModulesAbsent: collect runs no command that would load a
// missing module: no ipvsadm without ip_vs, no conntrack -L without
// nf_conntrack_netlink (where the table is not known empty), ss reads
// /proc/net instead of sock_diag, and iptables-save's nf_tables variant
// gives way to iptables-legacy-save without nf_tables.
func TestCollectModulesAbsent(t *testing.T) {
	dir := t.TempDir()
	out := hostOutputs(t)
	out[selfNetns+"|"+cmdSocketsProc.String()] = out[selfNetns+"|"+cmdSockets.String()]
	out[selfNetns+"|"+cmdIptablesLegacy.String()] = out[selfNetns+"|"+cmdIptables.String()]
	tools := map[string]bool{"iptables-legacy-save": true, "env": true}
	for k := range allTools {
		tools[k] = true
	}
	r := &fakeRunner{out: out, installed: tools}
	gate := &modGate{there: map[string]bool{"nf_conntrack": true, "nfnetlink": true}}
	o := CollectOptions{HostNetns: selfNetns, NetnsDirs: []string{}, Runner: r, NoDocker: true, Modules: gate}
	if err := Collect(context.Background(), o, dir); err != nil {
		t.Fatal(err)
	}
	for _, key := range r.ran {
		cmd := strings.SplitN(key, "|", 2)[1]
		if strings.HasPrefix(cmd, "ipvsadm") || strings.HasPrefix(cmd, "conntrack") || cmd == cmdSockets.String() || cmd == cmdIptables.String() {
			t.Errorf("ran %q with its module missing", key)
		}
	}
	if !strings.Contains(strings.Join(r.ran, "\n"), cmdSocketsProc.String()) || !strings.Contains(strings.Join(r.ran, "\n"), cmdIptablesLegacy.String()) {
		t.Errorf("ran %q, want ss from /proc and iptables-legacy-save", r.ran)
	}
	for file, written := range map[string]bool{"ss.txt": true, "iptables-save.txt": true, "conntrack.txt": false, "ipvsadm.txt": false} {
		if _, err := os.Stat(filepath.Join(dir, "netns", "host", file)); (err == nil) != written {
			t.Errorf("%s written %v, want %v", file, err == nil, written)
		}
	}
	notes, err := os.ReadFile(filepath.Join(dir, "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ipvsadm.txt not collected in any namespace: kernel has no IPVS (ip_vs is not loaded (fake))",
		"netns host: conntrack.txt not collected: conntrack table not read: nf_conntrack_netlink is not loaded (fake)",
		"ss.txt from `env PROC_ROOT=/proc ss -Htuln` (/proc/net, not sock_diag): inet_diag is not loaded (fake)",
		"iptables-save.txt from `iptables-legacy-save -c`: nf_tables is not loaded (fake)",
	} {
		if !strings.Contains(string(notes), want) {
			t.Errorf("NOTES.txt lacks %q:\n%s", want, notes)
		}
	}
	// Read back, IPVS is the live answer and conntrack not collected.
	m, err := Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	host := m.Namespaces[0]
	if host.IPVS == nil || host.IPVS.Available || host.IPVS.Reason != "kernel has no IPVS: ip_vs is not loaded (fake)" || host.Conntrack != nil {
		t.Errorf("host ipvs %+v conntrack %v", host.IPVS, host.Conntrack)
	}
	if host.Sockets == nil || host.Firewall == nil {
		t.Errorf("host sockets %v firewall %v, want both read the safe way", host.Sockets, host.Firewall)
	}
}

// TestCollectIptablesUnsafe: without nf_tables and without
// iptables-legacy-save, iptables-save runs only when `-V` says it is the
// legacy variant.
func TestCollectIptablesUnsafe(t *testing.T) {
	for _, tc := range []struct {
		version string
		run     bool
	}{{"iptables-save v1.8.9 (nf_tables)\n", false}, {"iptables-save v1.8.9 (legacy)\n", true}} {
		dir := t.TempDir()
		out := hostOutputs(t)
		out["|iptables-save -V"] = tc.version
		tools := maps.Clone(allTools)
		delete(tools, "iptables-legacy-save")
		r := &fakeRunner{out: out, installed: tools}
		gate := &modGate{there: map[string]bool{"ip_vs": true, "nf_conntrack": true, "nfnetlink": true, "nf_conntrack_netlink": true,
			"inet_diag": true, "tcp_diag": true, "udp_diag": true}}
		o := CollectOptions{HostNetns: selfNetns, NetnsDirs: []string{}, Runner: r, NoDocker: true, Modules: gate, IPVS: fakeProbe{ok: true}}
		if err := Collect(context.Background(), o, dir); err != nil {
			t.Fatal(err)
		}
		ran := strings.Contains(strings.Join(r.ran, "\n"), "|"+cmdIptables.String())
		notes, _ := os.ReadFile(filepath.Join(dir, "NOTES.txt"))
		if ran != tc.run || (!ran && !strings.Contains(string(notes), "iptables-save.txt not collected in any namespace: nf_tables ruleset not read: nf_tables is not loaded (fake)")) {
			t.Errorf("%q: ran iptables-save %v, want %v; notes:\n%s", tc.version, ran, tc.run, notes)
		}
	}
}
