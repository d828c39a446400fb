package diff_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/diff"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
)

const (
	meshState = "../fixtures/cmdout/mesh-state/node0"
	vm28      = "../fixtures/swarm-vm28/collect"
	vm28xfrm  = "../fixtures/swarm-vm28-xfrm/node0/collect"
)

func load(t *testing.T, dir string) *topology.Model {
	t.Helper()
	m, err := source.Load(context.Background(), source.Spec{Bundle: dir})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// edit is one change to a copy of a recorded bundle: the file rel (under
// the bundle) rewritten by fn, or removed when fn is nil.
type edit struct {
	rel string
	fn  func(t *testing.T, s string) string
}

// replace returns an edit of rel replacing old (which must be there) by new.
func replace(rel, old, new string) edit {
	return edit{rel, func(t *testing.T, s string) string {
		t.Helper()
		if !strings.Contains(s, old) {
			t.Fatalf("%s has no %q", rel, old)
		}
		return strings.Replace(s, old, new, 1)
	}}
}

// removeBlock returns an edit of rel removing the record holding marker:
// from the line before it that starts with start to the next such line.
func removeBlock(rel, marker, start string) edit {
	return edit{rel, func(t *testing.T, s string) string {
		t.Helper()
		lines := strings.SplitAfter(s, "\n")
		at := -1
		for i, l := range lines {
			if strings.Contains(l, marker) {
				at = i
				break
			}
		}
		if at < 0 {
			t.Fatalf("%s has no %q", rel, marker)
		}
		from := at
		for from > 0 && !strings.HasPrefix(lines[from], start) {
			from--
		}
		to := at + 1
		for to < len(lines) && !strings.HasPrefix(lines[to], start) {
			to++
		}
		return strings.Join(append(lines[:from:from], lines[to:]...), "")
	}}
}

// edited copies the bundle src and applies the edits.
func edited(t *testing.T, src string, edits ...edit) string {
	t.Helper()
	dst := t.TempDir()
	testutil.CopyTree(t, src, dst, nil)
	for _, e := range edits {
		p := filepath.Join(dst, e.rel)
		if e.fn == nil {
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // a new file: fn gets ""
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(e.fn(t, string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// listed returns the edit writing NAMESPACES.txt as collect does, listing
// base's namespace folders but those in except.
func listed(base string, except ...string) edit {
	return edit{"NAMESPACES.txt", func(t *testing.T, _ string) string {
		t.Helper()
		ents, err := os.ReadDir(filepath.Join(base, "netns"))
		if err != nil {
			t.Fatal(err)
		}
		s := "# every network namespace collect found on the node, one a line\n"
		for _, e := range ents {
			if !slices.Contains(except, e.Name()) {
				s += e.Name() + "\n"
			}
		}
		return s
	}}
}

// want is a change a case expects: its namespace, kind, op and words of
// its summary.
type want struct {
	netns string
	kind  diff.Kind
	op    diff.Op
	has   string
}

func (w want) match(c diff.Change) bool {
	return c.Netns == w.netns && c.Kind == w.kind && c.Op == w.op && strings.Contains(c.Summary, w.has)
}

// config are the changes traffic alone does not make.
func config(r *diff.Result) []diff.Change {
	var out []diff.Change
	for _, c := range r.Changes {
		if !c.Auto {
			out = append(out, c)
		}
	}
	return out
}

// expect checks that got are exactly the wants, one each.
func expect(t *testing.T, got []diff.Change, wants ...want) {
	t.Helper()
	used := make([]bool, len(got))
	for _, w := range wants {
		found := false
		for i, c := range got {
			if !used[i] && w.match(c) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("no change %+v", w)
		}
	}
	for i, c := range got {
		if !used[i] {
			t.Errorf("unexpected change: %s %s %s: %s", c.Netns, c.Kind, c.Op, c.Summary)
		}
	}
}

func TestCompareEdited(t *testing.T) {
	const (
		hostFW  = "netns/host/iptables-save.txt"
		taskNS  = "38f7f2248060"
		overlay = "1-g53361pn2j"
	)
	cases := []struct {
		name  string
		base  string
		edits []edit
		want  []want
		// traffic are the changes traffic makes that must be there too.
		traffic []want
	}{
		{"rule added", meshState, []edit{replace(hostFW, "[49:3877] -A FORWARD -j DOCKER-USER\n",
			"[0:0] -A INPUT -p udp -m udp --dport 4789 -j DROP\n[49:3877] -A FORWARD -j DOCKER-USER\n")},
			[]want{{"host", diff.RuleAdded, diff.Added, "filter INPUT #1 added: -A INPUT -p udp -m udp --dport 4789 -j DROP"}}, nil},
		{"rule removed", meshState, []edit{replace(hostFW, "[26:1720] -A DOCKER-INGRESS -p tcp -m tcp --dport 8080 -j ACCEPT\n", "")},
			[]want{{"host", diff.RuleRemoved, diff.Removed, "filter DOCKER-INGRESS #3 removed: -A DOCKER-INGRESS -p tcp -m tcp --dport 8080 -j ACCEPT"}}, nil},
		{"rule moved", meshState, []edit{replace(hostFW,
			"[3:93] -A DOCKER-INGRESS -p udp -m udp --dport 5353 -j ACCEPT\n[3:360] -A DOCKER-INGRESS -p udp -m udp --sport 5353 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n[26:1720] -A DOCKER-INGRESS -p tcp -m tcp --dport 8080 -j ACCEPT\n",
			"[3:360] -A DOCKER-INGRESS -p udp -m udp --sport 5353 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n[26:1720] -A DOCKER-INGRESS -p tcp -m tcp --dport 8080 -j ACCEPT\n[3:93] -A DOCKER-INGRESS -p udp -m udp --dport 5353 -j ACCEPT\n")},
			[]want{{"host", diff.RuleMoved, diff.Moved, "filter DOCKER-INGRESS rule moved from #1 to #3: -A DOCKER-INGRESS -p udp -m udp --dport 5353 -j ACCEPT"}}, nil},
		{"policy and a counter", meshState, []edit{replace(hostFW, ":FORWARD ACCEPT [0:0]", ":FORWARD DROP [7:420]")},
			[]want{{"host", diff.PolicyChanged, diff.Changed, "filter FORWARD policy ACCEPT -> DROP"}},
			[]want{{"host", diff.CounterMoved, diff.Changed, "policy filter FORWARD packets +7 (+420 bytes): DROP"}}},
		{"chain added", meshState, []edit{replace(hostFW, ":DOCKER-USER - [0:0]\n", ":DOCKER-USER - [0:0]\n:EXTRA - [0:0]\n[0:0] -A EXTRA -j DROP\n")},
			[]want{{"host", diff.ChainAdded, diff.Added, "chain filter EXTRA added (1 rules)"}, {"host", diff.RuleAdded, diff.Added, "filter EXTRA #1 added: -A EXTRA -j DROP"}}, nil},
		{"sysctl", meshState, []edit{replace("netns/host/sysctl.txt", "net.ipv4.ip_forward = 1", "net.ipv4.ip_forward = 0")},
			[]want{{"host", diff.SysctlChanged, diff.Changed, "net.ipv4.ip_forward 1 -> 0"}}, nil},
		{"mtu", meshState, []edit{replace("netns/"+taskNS+"/ip-addr.txt", "eth0@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450", "eth0@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500")},
			[]want{{taskNS, diff.LinkChanged, diff.Changed, "eth0: mtu 1450 -> 1500"}}, nil},
		{"link down and readdressed", meshState, []edit{
			replace("netns/"+taskNS+"/ip-addr.txt", "3: eth1@if6: <BROADCAST,MULTICAST,UP,LOWER_UP>", "3: eth1@if6: <BROADCAST,MULTICAST>"),
			replace("netns/"+taskNS+"/ip-addr.txt", "inet 10.0.0.8/24", "inet 10.0.0.18/24")},
			[]want{{taskNS, diff.LinkChanged, diff.Changed, "eth1: state up -> down"},
				{taskNS, diff.LinkChanged, diff.Added, "eth0: address 10.0.0.18/24 added"},
				{taskNS, diff.LinkChanged, diff.Removed, "eth0: address 10.0.0.8/24 removed"}}, nil},
		{"route removed", meshState, []edit{replace("netns/host/ip-route.txt", "192.168.77.0/24 dev eth0 proto kernel scope link src 192.168.77.10 \n", "")},
			[]want{{"host", diff.RouteChanged, diff.Removed, "route 192.168.77.0/24 dev eth0 src 192.168.77.10 removed"}}, nil},
		{"route changed", meshState, []edit{replace("netns/host/ip-route.txt", "src 172.18.0.1", "src 172.18.0.9")},
			[]want{{"host", diff.RouteChanged, diff.Changed, "route 172.18.0.0/16 dev docker_gwbridge src 172.18.0.1 -> 172.18.0.0/16 dev docker_gwbridge src 172.18.0.9"}}, nil},
		{"permanent neighbour and fdb entry removed", meshState, []edit{
			replace("netns/"+overlay+"/ip-neigh.txt", "10.0.0.9 dev vxlan0 lladdr 02:42:0a:00:00:09 PERMANENT \n", ""),
			replace("netns/"+overlay+"/bridge-fdb.txt", "02:42:0a:00:00:09 dev vxlan0 dst 192.168.77.11 link-netnsid 0 self permanent\n", "")},
			[]want{{overlay, diff.NeighChanged, diff.Removed, "neighbour 10.0.0.9 dev vxlan0 lladdr 02:42:0a:00:00:09 permanent removed"},
				{overlay, diff.FDBChanged, diff.Removed, "fdb 02:42:0a:00:00:09 dev vxlan0 dst 192.168.77.11 permanent removed"}}, nil},
		{"learned entries", meshState, []edit{replace("netns/"+overlay+"/bridge-fdb.txt", "02:42:0a:00:00:02 dev veth0 master br0 \n", "")},
			nil, []want{{overlay, diff.FDBChanged, diff.Removed, "fdb 02:42:0a:00:00:02 dev veth0 (learned) removed"}}},
		{"listener gone", meshState, []edit{replace("netns/"+taskNS+"/ss.txt", "udp UNCONN 0      0      0.0.0.0:53 0.0.0.0:*", "")},
			[]want{{taskNS, diff.SocketChanged, diff.Removed, "listener udp 0.0.0.0:53 removed"}}, nil},
		{"emulated real server removed", meshState, []edit{
			replace("netns/ingress_sbox/iptables-save.txt", `[3:180] -A PREROUTING -m mark --mark 0x100 -m comment --comment "meshtrace: emulates IPVS FWM" -j DNAT --to-destination 10.0.0.7`+"\n", ""),
			replace("netns/ingress_sbox/iptables-save.txt", `[0:0] -A OUTPUT -m mark --mark 0x100 -m comment --comment "meshtrace: emulates IPVS FWM" -j DNAT --to-destination 10.0.0.7`+"\n", "")},
			[]want{{"ingress_sbox", diff.RuleRemoved, diff.Removed, "nat PREROUTING #2 removed"},
				{"ingress_sbox", diff.RuleRemoved, diff.Removed, "nat OUTPUT #2 removed"},
				{"ingress_sbox", diff.IPVSChanged, diff.Removed, "FWM 256 (iptables): real server 10.0.0.7 removed"}}, nil},
		{"weight zero", vm28, []edit{replace("netns/ingress_sbox/ipvsadm.txt", "-a -f 257 -r 10.0.0.5:0 -m -w 1", "-a -f 257 -r 10.0.0.5:0 -m -w 0")},
			[]want{{"ingress_sbox", diff.IPVSChanged, diff.Changed, "FWM 257 -> 10.0.0.5: weight 1 -> 0"}}, nil},
		{"ipvs real server removed, service added", vm28, []edit{
			replace("netns/ingress_sbox/ipvsadm.txt", "-a -f 257 -r 10.0.0.5:0 -m -w 1\n", "-A -f 300 -s wlc\n-a -f 300 -r 10.0.0.9:0 -m -w 2\n")},
			[]want{{"ingress_sbox", diff.IPVSChanged, diff.Removed, "FWM 257: real server 10.0.0.5 removed"},
				{"ingress_sbox", diff.IPVSChanged, diff.Added, "service FWM 300 added (wlc, 1 real servers)"}}, nil},
		{"SA removed", vm28xfrm, []edit{removeBlock("netns/host/ip-xfrm-state.txt", "spi 0x66c4dd6b", "src ")},
			[]want{{"host", diff.XfrmChanged, diff.Removed, "SA esp 0x66c4dd6b 192.0.2.11->192.0.2.10 reqid 13681891 mode transport aead rfc4106(gcm(aes)) 160 bits removed"}}, nil},
		{"policy's SA changed", vm28xfrm, []edit{replace("netns/host/ip-xfrm-policy.txt", "spi 0x45a82588(1168647560)", "spi 0x45a82589(1168647561)")},
			[]want{{"host", diff.XfrmChanged, diff.Changed, "spi 0x45a82588 reqid 13681891 mode transport -> dir out"}}, nil},
		{"task moved", vm28, []edit{replace("docker/networks.json", `"Name": "sapi.1.q5bckwyovtls6eyfg46da6oej",
                        "EndpointID": "72ff7d1aa7d591ccc1bd1a737c5d985fd7e63638974435e5c62a578792238edf",
                        "EndpointIP": "10.0.2.3",
                        "Info": {
                            "Host IP": "192.0.2.10"`, `"Name": "sapi.1.q5bckwyovtls6eyfg46da6oej",
                        "EndpointID": "72ff7d1aa7d591ccc1bd1a737c5d985fd7e63638974435e5c62a578792238edf",
                        "EndpointIP": "10.0.2.3",
                        "Info": {
                            "Host IP": "192.0.2.11"`)},
			[]want{{"1dabbc86c049", diff.TaskChanged, diff.Moved, "task sapi.1 moved from node 192.0.2.10 to node 192.0.2.11"}}, nil},
		{"task replaced", vm28, []edit{replace("docker/containers.json", `"Name": "/sapi.1.q5bckwyovtls6eyfg46da6oej"`, `"Name": "/sapi.1.zzzzzzzzzzzzzzzzzzzzzzzzz"`)},
			[]want{{"1dabbc86c049", diff.TaskChanged, diff.Changed, "task sapi.1: container sapi.1.q5bckwyovtls6eyfg46da6oej -> sapi.1.zzzzzzzzzzzzzzzzzzzzzzzzz"}}, nil},
		{"counters", vm28xfrm, []edit{replace("netns/host/snmp.txt", "Udp: 313 0 0 220", "Udp: 316 3 0 220")},
			nil, []want{{"host", diff.CounterMoved, diff.Changed, "snmp UdpNoPorts +3"}, {"host", diff.CounterMoved, diff.Changed, "snmp UdpInDatagrams +3"}}},
		{"netns removed", meshState, []edit{{"netns/399646279053", nil}, listed(meshState, "399646279053")},
			[]want{{"399646279053", diff.NetnsRemoved, diff.Removed, "netns 399646279053 removed (task)"}}, nil},
		// Gone from a bundle that does not list its namespaces, or that
		// lists it: not collected, so not compared (exit 4), never removed.
		{"netns not collected", meshState, []edit{{"netns/399646279053", nil}}, nil, nil},
		{"netns listed, not collected", meshState, []edit{{"netns/399646279053", nil}, listed(meshState)}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := load(t, c.base)
			b := load(t, edited(t, c.base, c.edits...))
			r := diff.Compare(a, b)
			expect(t, config(r), c.want...)
			var traffic []diff.Change
			for _, ch := range r.Changes {
				if ch.Auto {
					traffic = append(traffic, ch)
				}
			}
			expect(t, traffic, c.traffic...)
			want := diff.ExitSame
			if len(c.want) > 0 {
				want = diff.ExitChanged
			} else if len(r.NotCompared) > 0 {
				want = diff.ExitUnknown
			}
			if got := r.Exit(); got != want {
				t.Errorf("exit %d, want %d", got, want)
			}
			// The other way round: the same changes, inverted.
			back := diff.Compare(b, a)
			if len(config(back)) != len(config(r)) {
				t.Errorf("B to A has %d changes, A to B %d", len(config(back)), len(config(r)))
			}
		})
	}
}

// TestCompareSame: every recorded bundle compared with itself has no
// change, and says what it could not compare.
func TestCompareSame(t *testing.T) {
	for _, dir := range testutil.RecordedBundles(t, "../fixtures") {
		m := load(t, dir)
		r := diff.Compare(m, load(t, dir))
		if len(r.Changes) != 0 {
			t.Errorf("%s: %d changes with itself, first %+v", dir, len(r.Changes), r.Changes[0])
		}
		if m.Lookup("host").Xfrm == nil && len(r.NotCompared) == 0 {
			t.Errorf("%s: no xfrm, but nothing is said not compared", dir)
		}
	}
}

// TestMissingIsNotAChange: a file missing from B (not collected) is never
// a change; it is said not compared, naming the side.
func TestMissingIsNotAChange(t *testing.T) {
	for _, base := range []string{vm28xfrm, meshState} {
		a := load(t, base)
		var files []string
		for _, ns := range []string{"host", "ingress_sbox"} {
			ents, err := os.ReadDir(filepath.Join(base, "netns", ns))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				files = append(files, filepath.Join("netns", ns, e.Name()))
			}
		}
		if ents, err := os.ReadDir(filepath.Join(base, "docker")); err == nil {
			for _, e := range ents {
				if e.Name() != "services.json" { // services are not compared, only tasks
					files = append(files, filepath.Join("docker", e.Name()))
				}
			}
		}
		for _, f := range files {
			b := load(t, edited(t, base, edit{f, nil}))
			r := diff.Compare(a, b)
			for _, c := range config(r) {
				t.Errorf("%s without %s: change %s %s: %s", base, f, c.Netns, c.Kind, c.Summary)
			}
			if filepath.Base(f) == "conntrack.txt" {
				continue // conntrack entries are not compared
			}
			if ns := a.Lookup(filepath.Base(filepath.Dir(f))); filepath.Base(f) == "ipvsadm-stats.txt" && len(ns.IPVS.Services) == 0 {
				continue // no service: no counter was lost
			}
			said := false
			for _, n := range r.NotCompared {
				said = said || strings.Contains(n.Reason, "not collected in B") && !strings.Contains(n.Reason, "in A")
			}
			if !said {
				t.Errorf("%s without %s: nothing said not collected in B: %+v", base, f, r.NotCompared)
			}
		}
	}
}

// TestRender: the text is grouped per namespace and escaped; the JSON
// has the documented shape and never a key of an SA.
func TestRender(t *testing.T) {
	a := load(t, vm28xfrm)
	b := load(t, edited(t, vm28xfrm,
		removeBlock("netns/host/ip-xfrm-state.txt", "spi 0x66c4dd6b", "src "),
		replace("netns/host/iptables-save.txt", "COMMIT", "-A INPUT -m comment --comment \"\x1b[31mred\" -j ACCEPT\nCOMMIT")))
	r := diff.Compare(a, b)
	var text, js bytes.Buffer
	if err := diff.WriteText(&text, r, diff.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := diff.WriteJSON(&js, r, diff.WriteOptions{NoCounters: true}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{text.String(), js.String()} {
		if strings.Contains(s, "\x1b") {
			t.Errorf("escape sequence printed:\n%s", s)
		}
		if strings.Contains(s, "Keys hidden") || strings.Contains(s, "0x0000000000") {
			t.Errorf("a key's text printed:\n%s", s)
		}
	}
	if !strings.Contains(text.String(), "\nnetns host\n  rule-added") || !strings.Contains(text.String(), `\x1b[31mred`) {
		t.Errorf("text:\n%s", text.String())
	}
	var got struct {
		Schema  int `json:"schema_version"`
		Changes []map[string]any
		NotComp []map[string]any `json:"not_compared"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Schema != 1 || len(got.Changes) != 2 {
		t.Fatalf("json: %s", js.String())
	}
	for _, c := range got.Changes {
		for _, k := range []string{"netns", "kind", "op", "summary"} {
			if _, ok := c[k]; !ok {
				t.Errorf("change without %s: %v", k, c)
			}
		}
		if c["kind"] == string(diff.CounterMoved) {
			t.Errorf("--no-counters printed %v", c)
		}
	}
}

// TestPlainIPAddrIsNotAChange: the same node read with `ip -d addr` and
// with plain `ip addr` (no kinds, no VXLAN attributes) has no link change
// either way: the details the plain side lacks are said not compared.
func TestPlainIPAddrIsNotAChange(t *testing.T) {
	for _, base := range testutil.RecordedBundles(t, "../fixtures") {
		a := load(t, base)
		b := load(t, testutil.PlainBundle(t, base))
		for _, r := range []*diff.Result{diff.Compare(a, b), diff.Compare(b, a)} {
			for _, c := range config(r) {
				t.Errorf("%s, plain: change %s %s: %s", base, c.Netns, c.Kind, c.Summary)
			}
		}
	}
}
