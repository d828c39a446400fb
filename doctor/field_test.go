package doctor_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
)

// insertRules adds rules at the top of table's chain in an iptables-save
// file (after the chain declarations, as `iptables -I` would put them).
func insertRules(table string, rules ...string) func(string) string {
	return func(s string) string {
		i := strings.Index(s, "*"+table+"\n")
		if i < 0 {
			decl := ""
			for _, t := range topology.IptablesTables {
				if t.Name == table {
					for _, c := range t.Builtins {
						decl += ":" + c + " ACCEPT [0:0]\n"
					}
				}
			}
			return s + "*" + table + "\n" + decl + counted(rules) + "COMMIT\n"
		}
		// after the last ":CHAIN" line of the table
		j := i + len("*"+table+"\n")
		for strings.HasPrefix(s[j:], ":") {
			j += strings.Index(s[j:], "\n") + 1
		}
		return s[:j] + counted(rules) + s[j:]
	}
}

func counted(rules []string) string {
	var b strings.Builder
	for _, r := range rules {
		b.WriteString("[0:0] " + r + "\n")
	}
	return b.String()
}

// fieldCase is one fault from the field written into a recorded bundle:
// the file edited (relative to the bundle), the code doctor must report in
// netns with severity sev, and no other finding above info.
type fieldCase struct {
	name, bundle, file string
	edit               func(string) string
	code, netns        string
	sev                doctor.Severity
}

func runFieldCases(t *testing.T, cases []fieldCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := checkBundle(t, editBundle(t, c.bundle, map[string]func(string) string{c.file: c.edit}))
			var got []string
			found := false
			for _, f := range serious(r) {
				got = append(got, f.Code+"@"+f.Netns)
				if f.Code == c.code && f.Netns == c.netns && f.Severity == c.sev {
					found = true
					if f.Evidence == "" || f.Confirm == "" || f.Fix == "" {
						t.Errorf("finding lacks evidence, confirm or fix: %+v", f)
					}
					continue
				}
				if c.code == "" || f.Code != c.code {
					t.Errorf("unexpected %s [%s] in %s: %s (evidence: %s)", f.Severity, f.Code, f.Netns, f.Summary, f.Evidence)
				}
			}
			if c.code != "" && !found {
				t.Errorf("want %s [%s] in %s, got %v\n%s", c.sev, c.code, c.netns, got, textOf(t, r))
			}
		})
	}
}

// TestGossipBlocked: the host's firewall dropping tcp/udp 7946 from the
// other nodes is found by evaluating a gossip packet from each peer (the
// overlay's VTEPs here) through the host's tables, not by looking for the
// port number: a DROP of 7946 from elsewhere, or one an ACCEPT of the
// peers' subnet comes before, is no fault; with no other node known (a
// one-node swarm), a node on the LAN stands in and the finding is a
// warning.
func TestGossipBlocked(t *testing.T) {
	runFieldCases(t, []fieldCase{
		{"tcp in", meshBundle, "netns/host/iptables-save.txt", insertRules("filter", "-A INPUT -p tcp -m tcp --dport 7946 -j DROP"), "gossip-blocked", "host", doctor.Error},
		{"udp policy", meshBundle, "netns/host/iptables-save.txt", func(s string) string {
			return strings.Replace(insertRules("filter", "-A INPUT -p tcp -j ACCEPT", "-A INPUT -p udp -m udp --dport 4789 -j ACCEPT")(s), ":INPUT ACCEPT", ":INPUT DROP", 1)
		}, "gossip-blocked", "host", doctor.Error},
		{"out", meshBundle, "netns/host/iptables-save.txt", insertRules("filter", "-A OUTPUT -p udp -m udp --dport 7946 -j REJECT"), "gossip-blocked", "host", doctor.Error},
		{"raw", meshBundle, "netns/host/iptables-save.txt", insertRules("raw", "-A PREROUTING -p tcp -m tcp --dport 7946 -j DROP"), "gossip-blocked", "host", doctor.Error},
		{"from elsewhere", meshBundle, "netns/host/iptables-save.txt", insertRules("filter", "-A INPUT -s 10.99.0.0/16 -p tcp -m tcp --dport 7946 -j DROP"), "", "", ""},
		{"peers accepted first", meshBundle, "netns/host/iptables-save.txt", insertRules("filter", "-A INPUT -s 192.168.77.0/24 -j ACCEPT", "-A INPUT -p tcp -m tcp --dport 7946 -j DROP"), "", "", ""},
		{"one node", swarmVM, "netns/host/iptables-save.txt", insertRules("filter", "-A INPUT -p udp -m udp --dport 7946 -j DROP"), "gossip-blocked", "host", doctor.Warning},
	})
}

// plainHost writes a bundle of a host that is no swarm node: Docker's
// docker0 but no docker_gwbridge (the recorded swarm node's root namespace
// without its swarm links), forwarding off, and more files as given.
func plainHost(t *testing.T, files map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(swarmVM, "netns/host/ip-addr.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	drop := false
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if m := regexp.MustCompile(`^\d+: ([^:@]+)`).FindStringSubmatch(l); m != nil {
			drop = m[1] == "docker_gwbridge" || strings.HasPrefix(m[1], "veth")
		}
		if !drop {
			keep = append(keep, l)
		}
	}
	dir := t.TempDir()
	all := map[string]string{
		"netns/host/ip-addr.txt": strings.Join(keep, ""),
		"netns/host/sysctl.txt":  "net.ipv4.ip_forward = 0\n",
		"netns/host/iptables-save.txt": "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n" +
			"-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80\nCOMMIT\n",
	}
	for k, v := range files {
		all[k] = v
	}
	for name, text := range all {
		if text == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestNotASwarmNode: a host with nothing of a swarm node gets one note and
// nothing else (not forwarding-disabled, nor a broken path for Docker's
// own bridge DNAT); what was not collected never makes a host "not a swarm
// node", and neither does a node whose ingress is broken.
func TestNotASwarmNode(t *testing.T) {
	r := checkBundle(t, plainHost(t, nil))
	if len(r.Findings) != 1 || r.Findings[0].Code != "not-a-swarm-node" || r.Findings[0].Severity != doctor.Info || r.Exit() != 0 {
		t.Fatalf("plain host: want one not-a-swarm-node note and exit 0, got exit %d:\n%s", r.Exit(), textOf(t, r))
	}
	if ev := r.Findings[0].Evidence; !strings.Contains(ev, "no docker_gwbridge") {
		t.Errorf("evidence %q", ev)
	}
	for name, files := range map[string]map[string]string{
		"links not collected": {"netns/host/ip-addr.txt": ""},
		"docker says swarm":   {"docker/networks.json": `[{"Name":"ingress","Id":"abc","Scope":"swarm","Driver":"overlay","Ingress":true}]`},
	} {
		dir := plainHost(t, nil)
		for f, text := range files {
			p := filepath.Join(dir, f)
			if text == "" {
				os.Remove(p)
				continue
			}
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte(text), 0o644)
		}
		if r := checkBundle(t, dir); hasCode(r, "not-a-swarm-node") {
			t.Errorf("%s: not-a-swarm-node:\n%s", name, textOf(t, r))
		}
	}
	for _, dir := range testutil.RecordedBundles(t, "../fixtures") {
		if r := checkBundle(t, dir); hasCode(r, "not-a-swarm-node") {
			t.Errorf("%s is a swarm node, doctor says it is not", dir)
		}
	}
}

// editBundle copies a bundle with files edited (relative to it; a file
// that is not there is edited from "").
func editBundle(t *testing.T, src string, edits map[string]func(string) string) string {
	t.Helper()
	dir := t.TempDir()
	testutil.CopyTree(t, src, dir, nil)
	for rel, edit := range edits {
		p := filepath.Join(dir, rel)
		b, _ := os.ReadFile(p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(edit(string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func dropLines(sub string) func(string) string {
	return func(s string) string {
		var keep []string
		for _, l := range strings.SplitAfter(s, "\n") {
			if !strings.Contains(l, sub) {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "")
	}
}

// resolverSS is `ss -Htuln` of a task of the recorded node whose embedded
// DNS server listens on the ports its DOCKER_OUTPUT DNATs to, as Docker's
// does (see fixtures/swarm-vm28's ss.txt).
func resolverSS(t *testing.T, bundle, netns string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bundle, "netns", netns, "iptables-save.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out string
	for _, m := range regexp.MustCompile(`-A DOCKER_OUTPUT -d 127.0.0.11/32 -p (\w+) .* --to-destination 127.0.0.11:(\d+)`).FindAllStringSubmatch(string(b), -1) {
		state := map[string]string{"tcp": "LISTEN", "udp": "UNCONN"}[m[1]]
		out += fmt.Sprintf("%s %s 0      4096   127.0.0.11:%s 0.0.0.0:*\n", m[1], state, m[2])
	}
	if out == "" {
		t.Fatalf("%s: no DOCKER_OUTPUT DNAT", netns)
	}
	return out + "tcp LISTEN 0      9               *:80          *:*\n"
}

// TestEmbeddedDNS: on the recorded 20.10 node with its tasks' sockets, a
// task whose DNAT of 127.0.0.11:53 is gone (as Docker leaves it when its
// rules fail: chains and jumps stay) or whose whole nat table is gone
// (the other sandboxes still have theirs) is dns-rules-missing; one whose
// resolver no longer listens is dns-no-listener. Without the sockets the
// listener is not checked, and says so.
func TestEmbeddedDNS(t *testing.T) {
	const task = "d6706d6e5669" // caller.1
	withSS := map[string]func(string) string{}
	for _, ns := range []string{task, "55e431cb2652"} {
		ss := resolverSS(t, swarmVM, ns)
		withSS["netns/"+ns+"/ss.txt"] = func(string) string { return ss }
	}
	healthy := editBundle(t, swarmVM, withSS)
	if r := checkBundle(t, healthy); len(serious(r)) > 0 || !strings.Contains(r.Coverage.Line(), "embedded DNS listener") {
		t.Fatalf("healthy with sockets:\n%s", textOf(t, r))
	}
	flushNAT := func(s string) string {
		i := strings.Index(s, "*nat\n")
		j := i + strings.Index(s[i:], "COMMIT\n") + len("COMMIT\n")
		return s[:i] + s[j:]
	}
	runFieldCases(t, []fieldCase{
		{"dnat gone", healthy, "netns/" + task + "/iptables-save.txt", dropLines("-A DOCKER_OUTPUT "), "dns-rules-missing", task, doctor.Error},
		{"nat table gone", healthy, "netns/" + task + "/iptables-save.txt", flushNAT, "dns-rules-missing", task, doctor.Error},
		{"no listener", healthy, "netns/" + task + "/ss.txt", dropLines("127.0.0.11"), "dns-no-listener", task, doctor.Error},
		{"udp listener gone", healthy, "netns/" + task + "/ss.txt", dropLines("udp "), "dns-no-listener", task, doctor.Error},
		{"tcp listener gone: udp lookups work", healthy, "netns/" + task + "/ss.txt", dropLines("tcp LISTEN 0      4096"), "", "", ""},
	})
	r := checkBundle(t, copyDir(t, swarmVM, "netns/"+task+"/iptables-save.txt", dropLines("-A DOCKER_OUTPUT ")))
	if !hasCode(r, "dns-rules-missing") {
		t.Errorf("the rules are in iptables-save: their absence needs no sockets:\n%s", textOf(t, r))
	}
	if line := r.Coverage.Line(); !strings.Contains(line, "embedded DNS listener (ss not collected in") {
		t.Errorf("coverage: %s", line)
	}
}

// TestSubnetOverlap: a host route over the ingress subnet (the built-in
// mesh's recording, whose ingress subnet only its namespaces give), or a
// link's own prefix over the overlays' (the 20.10 node, whose subnets
// Docker's metadata gives); a route next to them is no fault.
func TestSubnetOverlap(t *testing.T) {
	addRoute := func(r string) func(string) string { return func(s string) string { return s + r + "\n" } }
	runFieldCases(t, []fieldCase{
		{"lan route", meshBundle, "netns/host/ip-route.txt", addRoute("10.0.0.0/16 via 192.168.77.9 dev eth0"), "subnet-overlap", "host", doctor.Error},
		{"route beside", meshBundle, "netns/host/ip-route.txt", addRoute("10.1.0.0/16 via 192.168.77.9 dev eth0"), "", "", ""},
		{"link prefix", swarmVM, "netns/host/ip-addr.txt", func(s string) string {
			return regexp.MustCompile(`(?m)^(2: dummy0: .*\n(?:    .*\n)*?    link/ether .*\n)`).ReplaceAllString(s, "${1}    inet 10.0.0.77/8 scope global dummy0\n       valid_lft forever preferred_lft forever\n")
		}, "subnet-overlap", "host", doctor.Error},
	})
}

// secondAddr gives link a second address after its first.
func secondAddr(link, addr string) func(string) string {
	return func(s string) string {
		re := regexp.MustCompile(`(?m)^(    inet [0-9./]+ .*scope global ` + regexp.QuoteMeta(link) + `\n       valid_lft .*\n)`)
		return re.ReplaceAllString(s, "${1}    inet "+addr+" scope global "+link+"\n       valid_lft forever preferred_lft forever\n")
	}
}

// TestVTEPSource: a second address on the uplink and a route to the other
// node that prefers it (the vtep-source fault's shape): with Docker's
// metadata (the two-node 20.10 swarm, whose network peers name both nodes)
// the advertise address is known and the finding an error; on the built-in
// mesh's recording, which has no Docker metadata, the node's address
// stands for it and the finding is a warning. The same route without a
// src is no fault (the kernel picks the subnet's address).
func TestVTEPSource(t *testing.T) {
	const vm2 = "../fixtures/swarm-vm2/node0"
	routes := "default via 192.0.2.1 dev eth0\n192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.10\n"
	for name, c := range map[string]struct {
		bundle string
		edits  map[string]func(string) string
		sev    doctor.Severity
	}{
		"docker": {vm2, map[string]func(string) string{
			"netns/host/ip-addr.txt":  secondAddr("eth0", "192.0.2.254/32"),
			"netns/host/ip-route.txt": func(string) string { return routes + "192.0.2.11 dev eth0 scope link src 192.0.2.254\n" },
		}, doctor.Error},
		"mesh": {meshBundle, map[string]func(string) string{
			"netns/host/ip-addr.txt":  secondAddr("eth0", "192.168.77.254/32"),
			"netns/host/ip-route.txt": func(s string) string { return s + "192.168.77.11 dev eth0 scope link src 192.168.77.254\n" },
		}, doctor.Warning},
		"no src": {vm2, map[string]func(string) string{
			"netns/host/ip-addr.txt":  secondAddr("eth0", "192.0.2.254/32"),
			"netns/host/ip-route.txt": func(string) string { return routes + "192.0.2.11 dev eth0 scope link\n" },
		}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			r := checkBundle(t, editBundle(t, c.bundle, c.edits))
			var got []doctor.Finding
			for _, f := range serious(r) {
				if f.Code != "vtep-source" {
					t.Errorf("unexpected %s [%s]: %s", f.Severity, f.Code, f.Summary)
					continue
				}
				got = append(got, f)
			}
			if c.sev == "" {
				if len(got) > 0 {
					t.Errorf("no fault, got %+v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Severity != c.sev || !strings.Contains(got[0].Evidence, "source 192.") || !strings.Contains(got[0].Summary, ".254, not the node's advertise address") {
				t.Errorf("want one %s vtep-source, got:\n%s", c.sev, textOf(t, r))
			}
		})
	}
}

// TestStaleNeigh: on the two-node 20.10 swarm, the overlay's permanent
// neighbour of the remote task 10.0.0.5 pointed at an old MAC (the
// stale-neigh fault's shape) is stale-neigh, named once: the published
// path that breaks on it (no FDB entry for that MAC) adds no vxlan-no-fdb.
// Without Docker's metadata the overlay's FDB still tells (the endpoint's
// MAC has an entry, the neighbour's none), as it does for node1's ingress
// sandbox (10.0.0.3), which Docker lists as no task; an address neither
// knows an endpoint at is not judged.
func TestStaleNeigh(t *testing.T) {
	const vm2 = "../fixtures/swarm-vm2/node0"
	ovl := "netns/1-uj5g0wb34h/ip-neigh.txt"
	repoint := func(ip, mac string) func(string) string {
		return func(s string) string {
			return regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(ip)+` dev vxlan0 lladdr \S+`).ReplaceAllString(s, ip+" dev vxlan0 lladdr "+mac)
		}
	}
	runFieldCases(t, []fieldCase{
		{"remote task", vm2, ovl, repoint("10.0.0.5", "02:42:0a:00:00:fe"), "stale-neigh", "1-uj5g0wb34h", doctor.Error},
		{"fdb knows it", vm2, ovl, repoint("10.0.0.3", "02:42:0a:00:00:fe"), "stale-neigh", "1-uj5g0wb34h", doctor.Error},
	})
	r := checkBundle(t, copyDir(t, vm2, ovl, repoint("10.0.0.5", "02:42:0a:00:00:fe")))
	if hasCode(r, "vxlan-no-fdb") {
		t.Errorf("the stale neighbour is reported twice:\n%s", textOf(t, r))
	}
	noDocker := withoutFiles(t, vm2, "docker")
	r = checkBundle(t, copyDir(t, noDocker, ovl, repoint("10.0.0.5", "02:42:0a:00:00:fe")))
	if !hasCode(r, "stale-neigh") || !strings.Contains(r.Coverage.Line(), "stale neighbours against Docker's endpoints (docker network inspect not collected") {
		t.Errorf("without Docker's metadata:\n%s", textOf(t, r))
	}
	unknown := editBundle(t, noDocker, map[string]func(string) string{
		ovl:                                 repoint("10.0.0.3", "02:42:0a:00:00:fe"),
		"netns/1-uj5g0wb34h/bridge-fdb.txt": dropLines("02:42:0a:00:00:03 dev vxlan0 dst"),
	})
	if r := checkBundle(t, unknown); hasCode(r, "stale-neigh") {
		t.Errorf("neither Docker nor the FDB knows 10.0.0.3's endpoint, yet:\n%s", textOf(t, r))
	}
}

// TestIngressShadowed: Docker 28.0.0's rules after a daemon restart
// (DOCKER's DROP evaluated before DOCKER-INGRESS, moby#49536) make every
// published port ingress-shadowed; Docker 28.0.1+'s rules are healthy.
func TestIngressShadowed(t *testing.T) {
	const modern = "../fixtures/bundles/modern"
	gwSubnet, docker0 := netip.MustParsePrefix("172.18.0.0/16"), netip.MustParsePrefix("172.17.0.0/16")
	sbox := netip.MustParseAddr("172.18.0.2")
	ports := []dockerrules.Port{{Proto: "tcp", Published: 8080, Target: 80}}
	runFieldCases(t, []fieldCase{
		{"28.0.0 restarted", modern, "netns/host/iptables-save.txt", func(string) string {
			return dockerrules.Host2800("docker_gwbridge", gwSubnet, docker0, sbox, ports, true)
		}, "ingress-shadowed", "host", doctor.Error},
		{"28.0.1+", modern, "netns/host/iptables-save.txt", func(string) string {
			return dockerrules.Host28("docker_gwbridge", gwSubnet, docker0, sbox, []netip.Addr{sbox}, ports)
		}, "", "", ""},
	})
}

// TestBadChecksum: sightings from a capture whose packets go bad between
// the host's uplink and the overlay's VXLAN device make bad-checksum in the
// overlay; frames only not ready are no fault; without sightings the check
// does not run.
func TestBadChecksum(t *testing.T) {
	m := load(t, "modern")
	bad := func(pkt string) []topology.ChecksumSighting {
		return []topology.ChecksumSighting{
			{Packet: pkt, Order: 0, Hop: "host/eth0", Netns: "host", Proto: "tcp", Valid: true},
			{Packet: pkt, Order: 1, Hop: "1-c5h7abz82p/vxlan0", Netns: "1-c5h7abz82p", Proto: "tcp"},
		}
	}
	r := doctor.Check(m, doctor.Options{Checksums: append(bad("a"), bad("b")...)})
	var got []doctor.Finding
	for _, f := range r.Findings {
		if f.Code == "bad-checksum" {
			got = append(got, f)
		}
	}
	if len(got) != 1 || got[0].Netns != "1-c5h7abz82p" || !strings.HasPrefix(got[0].Summary, "2 tcp packet(s) reach 1-c5h7abz82p/vxlan0") || !strings.Contains(got[0].Evidence, "right at host/eth0") {
		t.Errorf("got %+v", got)
	}
	notReady := []topology.ChecksumSighting{{Packet: "a", Hop: "1-c5h7abz82p/vxlan0", Netns: "1-c5h7abz82p", Proto: "tcp", NotReady: true}}
	if r := doctor.Check(m, doctor.Options{Checksums: notReady}); hasCode(r, "bad-checksum") || !strings.Contains(r.Coverage.Line(), "checksums") {
		t.Errorf("not ready: %s", textOf(t, r))
	}
	// A capture during the probes: read once, after them, and added to
	// what was given.
	calls := 0
	capt := func() []topology.ChecksumSighting { calls++; return bad("c") }
	r = doctor.Check(m, doctor.Options{Checksums: bad("a"), CaptureChecksums: capt})
	var f *doctor.Finding
	for i := range r.Findings {
		if r.Findings[i].Code == "bad-checksum" {
			f = &r.Findings[i]
		}
	}
	if calls != 1 || f == nil || !strings.HasPrefix(f.Summary, "2 tcp packet(s)") {
		t.Errorf("with a capture (%d calls): %s", calls, textOf(t, r))
	}
	// A capture that saw nothing: the check ran, nothing wrong.
	r = doctor.Check(m, doctor.Options{CaptureChecksums: func() []topology.ChecksumSighting { return nil }})
	if hasCode(r, "bad-checksum") || !strings.Contains(r.Coverage.Line(), "checksums") {
		t.Errorf("an empty capture: %s", textOf(t, r))
	}
	if r := doctor.Check(m, doctor.Options{}); strings.Contains(r.Coverage.Line(), "checksums") {
		t.Errorf("no capture, yet: %s", r.Coverage.Line())
	}
}

// xfrmNode0 is node0 of the recorded two-node Docker 28 swarm with an
// encrypted overlay (ESP SAs and policies with node1, 192.0.2.11).
const xfrmNode0 = "../fixtures/swarm-vm28-xfrm/node0/collect"

// dropXfrmBlocks removes the `ip xfrm` entries (a header line and its
// indented lines) whose header starts with prefix.
func dropXfrmBlocks(prefix string) func(string) string {
	return func(s string) string {
		var out []string
		skip := false
		for _, l := range strings.SplitAfter(s, "\n") {
			if l != "" && l[0] != '\t' && l[0] != ' ' {
				skip = strings.HasPrefix(l, prefix)
			}
			if !skip {
				out = append(out, l)
			}
		}
		return strings.Join(out, "")
	}
}

// TestEncryptedOverlay: on the recorded encrypted overlay between two
// Docker 28 nodes, ESP dropped by the host's firewall (evaluated for the
// peer, `-p esp` or `-p 50`, in or out) is esp-blocked, and a peer whose
// outbound SA or out policy is gone is xfrm-missing; an ESP drop for
// another source is no fault. Without the xfrm files the IPsec state is not
// checked, and the coverage line says so.
func TestEncryptedOverlay(t *testing.T) {
	fw := "netns/host/iptables-save.txt"
	runFieldCases(t, []fieldCase{
		{"esp in", xfrmNode0, fw, insertRules("filter", "-A INPUT -p esp -j DROP"), "esp-blocked", "host", doctor.Error},
		{"proto 50 out", xfrmNode0, fw, insertRules("filter", "-A OUTPUT -d 192.0.2.0/24 -p 50 -j REJECT"), "esp-blocked", "host", doctor.Error},
		{"esp from elsewhere", xfrmNode0, fw, insertRules("filter", "-A INPUT -s 10.9.0.0/16 -p esp -j DROP"), "", "", ""},
		{"no outbound sa", xfrmNode0, "netns/host/ip-xfrm-state.txt", dropXfrmBlocks("src 192.0.2.10 dst 192.0.2.11"), "xfrm-missing", "host", doctor.Error},
		{"no policy", xfrmNode0, "netns/host/ip-xfrm-policy.txt", dropXfrmBlocks("src 192.0.2.10/32 dst 192.0.2.11/32"), "xfrm-missing", "host", doctor.Error},
	})
	r := checkBundle(t, withoutFiles(t, xfrmNode0, "netns/host/ip-xfrm-state.txt", "netns/host/ip-xfrm-policy.txt"))
	if hasCode(r, "xfrm-missing") || !strings.Contains(r.Coverage.Line(), "ipsec state (ip xfrm state not collected in host)") {
		t.Errorf("without xfrm files:\n%s", textOf(t, r))
	}
}

// TestFirewallSplit: Docker's rules in nf_tables (the built-in mesh's
// recording) and a legacy filter table whose FORWARD policy is DROP, as
// ufw on iptables-legacy leaves it: the published ports' packets are
// evaluated through the legacy tables too, and dropped there (error); a
// legacy rule that only accepts them is a warning; a legacy table with
// ACCEPT policies and no rules (what stays after the fault's repair) is no
// split.
func TestFirewallSplit(t *testing.T) {
	legacy := func(forward string, rules ...string) func(string) string {
		return func(string) string {
			return "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD " + forward + " [0:0]\n:OUTPUT ACCEPT [0:0]\n" + counted(rules) + "COMMIT\n"
		}
	}
	f := "netns/host/iptables-legacy-save.txt"
	runFieldCases(t, []fieldCase{
		{"legacy forward drop", meshBundle, f, legacy("DROP"), "firewall-split", "host", doctor.Error},
		{"legacy accept rule", meshBundle, f, legacy("ACCEPT", "-A FORWARD -p tcp -m tcp --dport 8080 -j ACCEPT"), "firewall-split", "host", doctor.Warning},
		{"legacy gossip drop", meshBundle, f, legacy("ACCEPT", "-A INPUT -p udp -m udp --dport 7946 -j DROP"), "firewall-split", "host", doctor.Error},
		{"empty legacy table", meshBundle, f, legacy("ACCEPT"), "", "", ""},
	})
}

// TestESPLeg: on the recorded encrypted overlay, the VIP path from node0's
// task to the remote task leaves through the out policy's ESP SA (the SPI
// `ip xfrm policy` printed on the node); without the policy it breaks
// (xfrm-missing), without the xfrm files it is unknown, never complete
// or broken for data that was not collected.
func TestESPLeg(t *testing.T) {
	policy, err := os.ReadFile(filepath.Join(xfrmNode0, "netns/host/ip-xfrm-policy.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^src 192\.0\.2\.10/32 dst 192\.0\.2\.11/32[^\n]*\n(?:\s[^\n]*\n)*?\s+proto esp spi (0x[0-9a-f]+)`).FindSubmatch(policy)
	if m == nil {
		t.Fatal("the recording's out policy to 192.0.2.11 has no ESP template")
	}
	wantSPI := string(m[1])
	q := topology.Query{Proto: "tcp", Port: 80, VIP: netip.MustParseAddr("10.0.1.2"), Netns: "c0f7053c15a2"}
	remote := func(t *testing.T, dir string) (*topology.Path, []topology.Hop) {
		t.Helper()
		mod, err := source.Load(context.Background(), source.Spec{Bundle: dir})
		if err != nil {
			t.Fatal(err)
		}
		p, err := topology.FindPath(mod, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range p.Backends {
			if b.Remote {
				return p, b.Hops
			}
		}
		t.Fatal("no remote backend")
		return nil, nil
	}
	p, hops := remote(t, xfrmNode0)
	if len(hops) != 1 || hops[0].Kind != topology.HopESP || hops[0].SPI.String() != wantSPI || hops[0].To.Addr != netip.MustParseAddr("192.0.2.11") {
		t.Errorf("healthy: remote backend hops %+v, want one esp hop with spi %s to 192.0.2.11", hops, wantSPI)
	}
	if p.Verdict != topology.VerdictComplete {
		t.Errorf("healthy: verdict %s", p.Verdict)
	}
	p, hops = remote(t, editBundle(t, xfrmNode0, map[string]func(string) string{
		"netns/host/ip-xfrm-policy.txt": dropXfrmBlocks("src 192.0.2.10/32 dst 192.0.2.11/32")}))
	if len(hops) != 1 || hops[0].Kind != topology.HopBreak || hops[0].Code != topology.BreakXfrmMissing || p.Verdict != topology.VerdictBroken {
		t.Errorf("no out policy: verdict %s, hops %+v, want a break xfrm-missing", p.Verdict, hops)
	}
	p, hops = remote(t, withoutFiles(t, xfrmNode0, "netns/host/ip-xfrm-state.txt", "netns/host/ip-xfrm-policy.txt"))
	if len(hops) != 1 || hops[0].Kind != topology.HopUnknown || p.Verdict != topology.VerdictUnknown {
		t.Errorf("xfrm not collected: verdict %s, hops %+v, want unknown", p.Verdict, hops)
	}
}
