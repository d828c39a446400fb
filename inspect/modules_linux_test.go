package inspect

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/dockerns"
	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/topology"
)

// goneTarget is a namespace the real readers cannot enter: a reader that
// got past the gate would fail to open it (an error that is not the gate's)
// or mark its sockets opened.
func goneTarget(g kmod.Gate) *Target {
	t := newTarget(NetnsRef{Name: "gone", Path: "/nonexistent/meshtrace/netns"})
	t.mods = g
	t.hints = targetHints{conntrack: 5, sockets: 5} // not known empty: a read would ask
	return t
}

// isAbsent fails unless err is the gate's and t opened no socket.
func isAbsent(t *testing.T, what string, tg *Target, err error, module string) {
	t.Helper()
	var ae *kmod.AbsentError
	if !errors.As(err, &ae) || ae.Module != module {
		t.Errorf("%s: %v, want the gate's error naming %s", what, err, module)
	}
	if tg.res.opened {
		t.Errorf("%s: opened the namespace's netlink sockets with %s missing", what, module)
	}
}

// TestRealReadersStopAtTheGate: with the modules missing, no real reader
// makes its request (no socket opened, nothing run, no nf_tables read).
func TestRealReadersStopAtTheGate(t *testing.T) {
	none := &modGate{}
	tg := goneTarget(none)
	_, err := kernelConntrack{}.ReadConntrack(tg)
	isAbsent(t, "conntrack", tg, err, "nf_conntrack")

	tg = goneTarget(none)
	_, err = kernelSockets{}.ReadSockets(tg)
	isAbsent(t, "sockets", tg, err, "inet_diag")

	tg = goneTarget(none)
	v, err := NewIPVSReader(kernelIPVS{}).ReadIPVS(tg)
	if err != nil || v.Available || !strings.Contains(v.Reason, "ip_vs is not loaded") || tg.res.opened {
		t.Errorf("ipvs: %+v %v (sockets opened %v), want unavailable without a lookup", v, err, tg.res.opened)
	}

	reads := 0
	saved := nftRead
	nftRead = func(string) (*topology.Firewall, error) { reads++; return &topology.Firewall{}, nil }
	t.Cleanup(func() { nftRead = saved })
	tg = goneTarget(none)
	_, err = kernelFirewall{}.ReadNetlink(tg)
	isAbsent(t, "nf_tables", tg, err, "nfnetlink")
	if reads != 0 {
		t.Errorf("nf_tables read %d times with nf_tables missing", reads)
	}
}

// TestReadExecWithoutNFTables: without nf_tables, iptables-nft-save never
// runs (it would load nf_tables); iptables-legacy-save does, in the
// namespace, or iptables-save when it is the legacy variant.
func TestReadExecWithoutNFTables(t *testing.T) {
	legacyOut := "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
	for _, tc := range []struct {
		name     string
		legacy   bool   // iptables-legacy-save installed
		version  string // iptables-save -V
		wantRuns []string
		wantErr  bool
	}{
		{"legacy-save installed", true, "", []string{"/nonexistent/meshtrace/netns|/usr/sbin/iptables-legacy-save -c"}, false},
		{"nft variant only", false, "iptables-save v1.8.9 (nf_tables)\n", []string{"|iptables-save -V"}, true},
		{"legacy variant only", false, "iptables-save v1.8.9 (legacy)\n",
			[]string{"|iptables-save -V", "/nonexistent/meshtrace/netns|iptables-save -c"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			variants.Clear()
			t.Cleanup(variants.Clear)
			var runs []string
			k := kernelFirewall{
				run: func(ns, bin string, args ...string) ([]byte, []byte, error) {
					runs = append(runs, ns+"|"+strings.Join(append([]string{bin}, args...), " "))
					if slices.Contains(args, "-V") {
						return []byte(tc.version), nil, nil
					}
					return []byte(legacyOut), nil, nil
				},
				look: func(name string) (string, error) {
					if tc.legacy && name == "iptables-legacy-save" {
						return "/usr/sbin/iptables-legacy-save", nil
					}
					return "", errors.New("not installed")
				},
			}
			fw, err := k.ReadExec(goneTarget(&modGate{}), "")
			if !slices.Equal(runs, tc.wantRuns) {
				t.Errorf("ran %q, want %q", runs, tc.wantRuns)
			}
			var ae *kmod.AbsentError
			if tc.wantErr != errors.As(err, &ae) || (!tc.wantErr && (err != nil || len(fw.Tables) != 1)) {
				t.Errorf("ReadExec: %v %v, want gate error %v", fw, err, tc.wantErr)
			}
		})
	}
}

// TestNetfilterSocketGated: the namespace's handle gets a NETLINK_NETFILTER
// socket only where nfnetlink is there (opening one loads it).
func TestNetfilterSocketGated(t *testing.T) {
	tg := goneTarget(&modGate{})
	if fams := tg.nlFamilies(); slices.Contains(fams, unix.NETLINK_NETFILTER) || tg.res.netfilter {
		t.Errorf("families %v (netfilter %v) with nfnetlink missing", fams, tg.res.netfilter)
	}
	tg = goneTarget(kmod.Allow{})
	if fams := tg.nlFamilies(); !slices.Contains(fams, unix.NETLINK_NETFILTER) || !tg.res.netfilter {
		t.Errorf("families %v (netfilter %v) with module loading allowed", fams, tg.res.netfilter)
	}
}

// procModules is /proc/modules, "" on a kernel without loadable modules.
func procModules(t *testing.T) string {
	b, err := os.ReadFile("/proc/modules")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// TestLiveModulesHost runs the live reader on a Docker-shaped node with
// this machine's own gate: every read whose modules the gate finds is made
// and every other one is skipped with its note, and the modules are the
// same afterwards. (Here, a kernel without loadable modules, all reads are
// made; on a modular kernel without ip_vs and friends they are skipped.)
func TestLiveModulesHost(t *testing.T) {
	w := world(t, dockerns.Options{Tasks: 1, Listen: true})
	before := procModules(t)
	host := kmod.Host()
	m, err := Live(context.Background(), Options{HostNetns: w.HostPath, NetnsDirs: []string{w.Dir}, Conntrack: true, Modules: host})
	if err != nil {
		t.Fatal(err)
	}
	if after := procModules(t); after != before {
		t.Errorf("/proc/modules changed by a read:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	notes := strings.Join(m.Notes, "\n")
	for _, tc := range []struct {
		need kmod.Need
		read func(ns *topology.Namespace) bool
	}{
		{kmod.NeedSockets, func(ns *topology.Namespace) bool { return ns.Sockets != nil }},
		{kmod.NeedConntrack, func(ns *topology.Namespace) bool { return ns.Conntrack != nil }},
		{kmod.NeedNFTables, func(ns *topology.Namespace) bool { return ns.Firewall != nil && ns.Firewall.Backend != "legacy" }},
	} {
		gerr := tc.need.Check(host)
		for _, ns := range m.Namespaces {
			if len(ns.Errors) > 0 {
				t.Errorf("netns %s: errors %q", ns.Name, ns.Errors)
			}
			if tc.read(ns) != (gerr == nil) {
				t.Errorf("netns %s: %s read %v, gate says %v", ns.Name, tc.need.What, tc.read(ns), gerr)
			}
		}
		if gerr != nil && !strings.Contains(notes, gerr.Error()) {
			t.Errorf("notes %q lack %q", m.Notes, gerr)
		}
		if gerr == nil && strings.Contains(notes, tc.need.What+" not read") {
			t.Errorf("notes %q: %s skipped with its modules there", m.Notes, tc.need.What)
		}
	}
	ok, how := host.Present("ip_vs")
	for _, ns := range m.Namespaces {
		if ns.IPVS == nil || strings.Contains(ns.IPVS.Reason, "not loaded") == ok {
			t.Errorf("netns %s: ipvs %+v with ip_vs %v (%s)", ns.Name, ns.IPVS, ok, how)
		}
	}
}

// TestCollectSocketsFromProc: without the sock_diag modules collect's ss
// reads /proc/net in each namespace, and the bundle lists the same
// listening sockets the live reader finds over sock_diag.
func TestCollectSocketsFromProc(t *testing.T) {
	w := world(t, dockerns.Options{Tasks: 2, Listen: true})
	noDiag := &modGate{there: map[string]bool{"ip_vs": true, "nf_conntrack": true, "nfnetlink": true,
		"nf_conntrack_netlink": true, "nf_tables": true}}
	dir := t.TempDir()
	if err := Collect(context.Background(), CollectOptions{HostNetns: w.HostPath, NetnsDirs: []string{w.Dir}, NoDocker: true, Modules: noDiag}, dir); err != nil {
		t.Fatal(err)
	}
	b, err := Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Live(context.Background(), Options{HostNetns: w.HostPath, NetnsDirs: []string{w.Dir}, Modules: kmod.Allow{}})
	if err != nil {
		t.Fatal(err)
	}
	listening := 0
	for _, ns := range m.Namespaces {
		bns := b.Lookup(ns.Name)
		if bns == nil || bns.Sockets == nil {
			t.Errorf("netns %s: sockets not in the bundle", ns.Name)
			continue
		}
		listening += len(ns.Sockets)
		if d := cmp.Diff(ns.Sockets, bns.Sockets, cmpopts.EquateComparable(netip.Addr{})); d != "" {
			t.Errorf("netns %s: sockets from /proc/net differ from sock_diag's (-live +bundle):\n%s", ns.Name, d)
		}
	}
	if listening == 0 {
		t.Error("no listening socket in the world: the comparison compared nothing")
	}
	if !strings.Contains(strings.Join(b.Notes, "\n"), "ss.txt from `env PROC_ROOT=/proc ss -Htuln`") {
		t.Errorf("notes %q do not say how ss.txt was made", b.Notes)
	}
}
