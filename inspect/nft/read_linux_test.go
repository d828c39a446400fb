package nft

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/topology"
)

// setupNetns makes a namespace with lo up and links (veth pairs, both ends
// inside; this kernel has no dummy driver) carrying the addresses the
// rulesets talk about, then loads a ruleset file.
func setupNetns(t testing.TB, rulesFile string, links map[string]string) (name, path string) {
	t.Helper()
	name, path = newNetns(t)
	nsRun(t, name, "", "ip", "link", "set", "lo", "up")
	i := 0
	for link, addr := range links {
		peer := fmt.Sprintf("peer%d", i)
		i++
		nsRun(t, name, "", "ip", "link", "add", link, "type", "veth", "peer", "name", peer)
		nsRun(t, name, "", "ip", "addr", "add", addr, "dev", link)
		nsRun(t, name, "", "ip", "link", "set", link, "up")
		nsRun(t, name, "", "ip", "link", "set", peer, "up")
	}
	if rulesFile != "" {
		rules, err := os.ReadFile(rulesFile)
		if err != nil {
			t.Fatal(err)
		}
		nsRun(t, name, string(rules), "iptables-restore")
	}
	return name, path
}

// sendTraffic sends one-shot packets from inside the namespace so counters
// move: UDP datagrams and TCP connection attempts that are given up at
// once (no SYN retransmit can move a counter later).
func sendTraffic(t testing.TB, path string, targets []string) {
	t.Helper()
	err := netnsx.Do(path, func() error {
		for _, tg := range targets {
			proto, addr, _ := strings.Cut(tg, "://")
			c, err := net.DialTimeout(proto, addr, 30*time.Millisecond)
			if err != nil {
				continue // refused or timed out: the packets were still counted
			}
			if proto == "udp" {
				_, _ = c.Write([]byte("meshtrace"))
			}
			c.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("traffic in %s: %v", path, err)
	}
	time.Sleep(20 * time.Millisecond) // let ICMP errors and RSTs land
}

// readStable reads with Read and with iptables-save -c until two Read
// calls around the iptables-save agree, so counters did not move between.
func readStable(t testing.TB, name, path string) (*topology.Firewall, string) {
	t.Helper()
	for try := 0; try < 5; try++ {
		before, err := Read(path)
		if err != nil {
			t.Fatalf("Read(%s): %v", path, err)
		}
		s := nsRun(t, name, "", "iptables-save", "-c")
		after, err := Read(path)
		if err != nil {
			t.Fatalf("Read(%s): %v", path, err)
		}
		if reflect.DeepEqual(before, after) {
			return after, s
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("netns %s: counters kept moving", name)
	return nil, ""
}

// shapeCases are the Docker-shaped namespaces the tests build (and
// TestRecordWire records).
var shapeCases = []struct {
	name    string
	rules   string
	links   map[string]string
	traffic []string
	// minCounted: at least this many rules must have counted packets,
	// so the counter comparison is not vacuous.
	minCounted int
	// needs names the xtables extensions the rules use that a kernel may
	// lack (see xtprobe_linux_test.go): the case is skipped without them.
	needs []string
}{
	{"host", "testdata/host.rules", map[string]string{"docker_gwbridge": "172.18.0.1/16", "eth0": "192.0.2.10/24"},
		[]string{"tcp://127.0.0.1:8080", "udp://192.0.2.10:5353", "udp://172.18.0.9:9", "tcp://192.0.2.10:80"}, 3, nil},
	{"sandbox", "testdata/sandbox.rules", map[string]string{"eth0": "10.255.0.2/16", "eth1": "172.18.0.2/16"},
		[]string{"udp://127.0.0.11:53", "tcp://127.0.0.11:53", "udp://10.255.0.5:8080", "udp://10.255.0.9:8080"}, 3, nil},
	{"task", "testdata/task.rules", map[string]string{"eth0": "10.255.0.7/16"},
		[]string{"tcp://10.255.0.7:8080", "tcp://10.255.0.7:80", "udp://10.255.0.7:53"}, 2, nil},
	{"misc", "testdata/misc.rules", map[string]string{"eth0": "10.1.2.3/23"},
		[]string{"udp://10.1.2.3:1500", "tcp://10.1.2.3:443", "udp://127.0.0.1:4789"}, 1, nil},
	{"encrypted", "testdata/encrypted.rules", map[string]string{"eth0": "192.0.2.10/24"},
		[]string{"udp://192.0.2.10:4789", "udp://127.0.0.1:4789"}, 1, []string{"bpf", "policy", "u32"}},
}

func TestReadDockerShapes(t *testing.T) {
	for _, c := range shapeCases {
		t.Run(c.name, func(t *testing.T) {
			needXT(t, c.needs...)
			name, path := setupNetns(t, c.rules, c.links)
			sendTraffic(t, path, c.traffic)
			fw, s := readStable(t, name, path)
			if fw.Backend != "nf_tables" {
				t.Errorf("backend %q", fw.Backend)
			}
			if len(fw.Unparsed) > 0 {
				t.Errorf("unparsed: %+v", fw.Unparsed)
			}
			n := compareWithSave(t, fw, parseSave(t, s))
			compareParsed(t, fw, s)
			if n < 5 {
				t.Errorf("only %d rules compared", n)
			}
			t.Logf("%d rules compared", n)
			counted, policies := 0, 0
			for _, tb := range fw.Tables {
				for _, ch := range tb.Chains {
					if ch.Packets > 0 {
						policies++
					}
					for _, r := range ch.Rules {
						if r.Packets > 0 {
							counted++
						}
					}
				}
			}
			t.Logf("%d rules and %d chain policies counted packets", counted, policies)
			if policies == 0 {
				t.Errorf("no chain policy counter moved")
			}
			if counted < c.minCounted {
				t.Errorf("only %d rules counted packets, want >= %d: traffic did not exercise the counters", counted, c.minCounted)
			}
		})
	}
}

// TestReadStructured pins structured fields of Docker's key rules (the text
// comparison above covers Render; this covers what Evaluate reads).
func TestReadStructured(t *testing.T) {
	_, path := setupNetns(t, "testdata/host.rules", nil)
	fw, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	ing := fw.Table("nat").Chain("DOCKER-INGRESS")
	if ing == nil || len(ing.Rules) != 3 {
		t.Fatalf("nat DOCKER-INGRESS: %+v", ing)
	}
	r := ing.Rules[0]
	if r.Proto == nil || r.Proto.Value != "tcp" || r.Proto.Neg {
		t.Errorf("proto %+v", r.Proto)
	}
	if m := r.Match("tcp"); m.Opt("dport").Arg() != "8080" {
		t.Errorf("tcp match %+v", m)
	}
	if r.Target != "DNAT" || r.TargetOpt("to-destination").Arg() != "172.18.0.2:8080" {
		t.Errorf("target %s %+v", r.Target, r.TargetOpts)
	}
	post := fw.Table("nat").Chain("POSTROUTING").Rules[1]
	if post.Src == nil || post.Src.Value != "172.18.0.0/16" || post.OutIface == nil ||
		!post.OutIface.Neg || post.OutIface.Value != "docker_gwbridge" || post.Target != "MASQUERADE" {
		t.Errorf("masquerade rule %+v", post)
	}
	pre := fw.Table("nat").Chain("PREROUTING").Rules[0]
	if m := pre.Match("addrtype"); m == nil || m.Opt("dst-type").Arg() != "LOCAL" || pre.Target != "DOCKER-INGRESS" || pre.Goto {
		t.Errorf("addrtype jump %+v", pre)
	}
	if p := fw.Table("filter").Chain("FORWARD"); p.Policy != "DROP" {
		t.Errorf("FORWARD policy %s", p.Policy)
	}
}

func TestReadEmptyNetns(t *testing.T) {
	_, path := newNetns(t)
	fw, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(fw.Tables) != 0 || len(fw.Unparsed) != 0 {
		t.Errorf("empty netns gave %+v", fw)
	}
}

// TestReadCallerNetns reads "" from a thread inside the namespace: it must
// see that namespace, not the process's.
func TestReadCallerNetns(t *testing.T) {
	_, path := setupNetns(t, "testdata/task.rules", nil)
	want, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	var got *topology.Firewall
	if err := netnsx.Do(path, func() error {
		var err error
		got, err = Read("")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Read(\"\") inside the netns differs from Read(path)")
	}
}

func TestReadLegacy(t *testing.T) {
	if _, err := exec.LookPath("iptables-legacy"); err != nil {
		t.Skip("iptables-legacy not installed")
	}
	name, path := newNetns(t)
	nsRun(t, name, "", "iptables-legacy", "-t", "nat", "-A", "POSTROUTING", "-j", "MASQUERADE")
	_, err := Read(path)
	if !errors.Is(err, ErrLegacy) {
		t.Fatalf("Read of a legacy-only netns: err %v, want ErrLegacy", err)
	}
	var le *LegacyError
	if !errors.As(err, &le) || le.NetNS != path || !reflect.DeepEqual(le.Tables, []string{"nat"}) {
		t.Errorf("legacy error %+v", le)
	}

	// Both backends in one netns (Docker on iptables-legacy, the host on
	// nftables): the nf_tables rules are read, the legacy ones reported.
	nsRun(t, name, "", "iptables-nft", "-t", "filter", "-A", "INPUT", "-j", "ACCEPT")
	fw, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if fw.RuleCount() != 1 || len(fw.Unparsed) != 1 || !strings.Contains(fw.Unparsed[0].Reason, "iptables-legacy") ||
		!strings.Contains(fw.Unparsed[0].Text, "nat") {
		t.Errorf("mixed backends: %d rules, unparsed %+v", fw.RuleCount(), fw.Unparsed)
	}
}

func TestReadAll(t *testing.T) {
	_, host := setupNetns(t, "testdata/host.rules", nil)
	_, task := setupNetns(t, "testdata/task.rules", nil)
	_, empty := newNetns(t)
	paths := []string{task, "/nonexistent/netns", host, empty, task}
	fws, errs := ReadAll(paths, 2)
	for i, p := range paths {
		want, werr := Read(p)
		if (errs[i] == nil) != (werr == nil) || !reflect.DeepEqual(fws[i], want) {
			t.Errorf("%s: ReadAll gave %v/%v, Read %v/%v", p, fws[i] != nil, errs[i], want != nil, werr)
		}
	}
	if errs[1] == nil || fws[0].RuleCount() != 9 || fws[2].RuleCount() != 33 {
		t.Errorf("ReadAll results out of order: %v", errs)
	}
}

func TestReadBadPath(t *testing.T) {
	_, err := Read("/nonexistent/netns")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/netns") {
		t.Errorf("err %v should name the path", err)
	}
}

// TestReadUndecodable adds native nft rules that iptables-nft would never
// write into an iptables chain: they must be kept, marked, and reported
// with table/chain/position.
func TestReadUndecodable(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed")
	}
	name, path := setupNetns(t, "testdata/task.rules", nil)
	nsRun(t, name, "", "nft", "add", "rule", "ip", "filter", "TASK-IN", "ip", "ttl", "5", "counter", "accept")
	nsRun(t, name, "", "nft", "add", "rule", "ip", "filter", "TASK-IN", "tcp", "dport", "{ 1, 2 }", "counter", "drop")
	fw, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	ch := fw.Table("filter").Chain("TASK-IN")
	if len(ch.Rules) != 6 {
		t.Fatalf("TASK-IN has %d rules, want 6 (4 + 2 native)", len(ch.Rules))
	}
	if len(fw.Unparsed) != 2 {
		t.Fatalf("unparsed %+v, want 2 entries", fw.Unparsed)
	}
	for i, u := range fw.Unparsed {
		pos := 5 + i
		if u.Line != pos || !strings.Contains(u.Reason, "table filter chain TASK-IN rule") {
			t.Errorf("unparsed %d: %+v", i, u)
		}
		r := ch.Rules[pos-1]
		if !strings.Contains(r.Text, undecodedOpt) || u.Text != r.Text {
			t.Errorf("rule %d not marked: %s", pos, r.Text)
		}
	}
	if ch.Rules[4].Target != "ACCEPT" || ch.Rules[5].Target != "DROP" {
		t.Errorf("verdicts of undecodable rules lost: %s / %s", ch.Rules[4].Text, ch.Rules[5].Text)
	}
}
