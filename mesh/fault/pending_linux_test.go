package fault_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/internal/meshtest"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/probe"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/mesh"
	"github.com/meshtrace/meshtrace/mesh/fault"
)

// clusterEnv is a 3-node mesh: web (tcp 8080 -> 80) with web.1 on node0,
// web.2 on node1, web.3 on node2, and db (dnsrr, tcp 5432) with db.1 on
// node0, db.2 on node1.
type clusterEnv struct {
	t    *testing.T
	name string
	st   *mesh.State
	web  mesh.ServiceState
	db   mesh.ServiceState
}

func newCluster(t *testing.T) *clusterEnv {
	t.Helper()
	testutil.NeedRoot(t)
	name := meshtest.Name(t)
	meshtest.Up(t, name, "--nodes", "3", "--service", "web:8080:80x3", "--service", "db:dnsrr:5432x2", "--lb", "iptables")
	st, err := mesh.Load("", name)
	if err != nil {
		t.Fatal(err)
	}
	e := &clusterEnv{t: t, name: name, st: st, web: st.Services[0], db: st.Services[1]}
	for i, tk := range e.web.Tasks {
		if tk.Node != st.Nodes[i].Name {
			t.Fatalf("unexpected layout: %+v", st.Services)
		}
	}
	return e
}

// web makes n requests at once from the client to node's web port.
func (e *clusterEnv) webVia(n, node int) []outcome {
	return ask(e.st, n, "tcp", netip.AddrPortFrom(e.st.Nodes[node].IP, uint16(e.web.Published)), "/", symptomTimeout)
}

// allWeb: three requests through node reach web.1, web.2 and web.3.
func (e *clusterEnv) allWeb(node int) error {
	outs := e.webVia(3, node)
	if err := expectMix(outs, 0, "", "web.1", "web.2", "web.3"); err != nil {
		return err
	}
	if outs[0].task == outs[1].task || outs[1].task == outs[2].task {
		return fmt.Errorf("not every task answered: %v", outs)
	}
	return nil
}

// webFailsVia: three requests through node, fails of them time out, the
// rest are answered by allowed.
func (e *clusterEnv) webFailsVia(node, fails int, allowed ...string) (string, error) {
	outs := e.webVia(3, node)
	return fmt.Sprintf("via node%d: %s", node, summary(outs)), expectMix(outs, fails, "timeout", allowed...)
}

// break injects kind on node0 (or node) and returns the record.
func (e *clusterEnv) breakFault(kind, node string) *fault.Fault {
	e.t.Helper()
	out, errs, code := meshtest.Run(e.t, "mesh", "break", "--name", e.name, kind, "--node", node, "-o", "json")
	if code != 0 {
		e.t.Fatalf("mesh break %s --node %s: exit %d\n%s%s", kind, node, code, out, errs)
	}
	var f fault.Fault
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		e.t.Fatalf("mesh break -o json: %v\n%s", err, out)
	}
	return &f
}

func (e *clusterEnv) repair() {
	e.t.Helper()
	if out, errs, code := meshtest.Run(e.t, "mesh", "repair", "--name", e.name); code != 0 {
		e.t.Fatalf("mesh repair: exit %d\n%s%s", code, out, errs)
	}
}

// lookup asks 127.0.0.11:53 from a task, over proto.
func lookup(ctx context.Context, tk mesh.TaskState, proto, name string) (probe.Reply, error) {
	return probe.Lookup(ctx, probe.Query{Netns: tk.Netns, From: tk.Name, Proto: proto, Name: name})
}

// dnsFails: the task's lookups are refused over UDP and TCP while
// another task on another node still resolves.
func (e *clusterEnv) dnsFails(broken, other mesh.TaskState) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var seen []string
	for _, proto := range []string{"udp", "tcp"} {
		_, err := lookup(ctx, broken, proto, "web")
		seen = append(seen, fmt.Sprintf("%s %s: %v", broken.Name, proto, errKind(err)))
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET) {
			return strings.Join(seen, ", "), fmt.Errorf("%s's %s lookup: %v, want refused", broken.Name, proto, err)
		}
	}
	r, err := lookup(ctx, other, "udp", "tasks.web")
	seen = append(seen, fmt.Sprintf("%s: %v", other.Name, r.Addrs))
	if err != nil || len(r.Addrs) != len(e.web.Tasks) {
		return strings.Join(seen, ", "), fmt.Errorf("%s's lookup: %+v %v", other.Name, r, err)
	}
	return strings.Join(seen, ", "), nil
}

// everyTaskResolves: every task's embedded DNS server answers web.
func (e *clusterEnv) everyTaskResolves() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, s := range e.st.Services {
		for _, tk := range s.Tasks {
			if r, err := lookup(ctx, tk, "udp", "web"); err != nil || len(r.Addrs) != 1 || r.Addrs[0] != e.web.VIP {
				errs = append(errs, fmt.Errorf("%s asks web: %+v %v", tk.Name, r, err))
			}
		}
	}
	return errors.Join(errs...)
}

func errKind(err error) string {
	if err == nil {
		return "ok"
	}
	return classify("", err).kind
}

// echoIn answers every datagram to addr (port 0: any free one) inside
// netns with reply, until closed; it returns where it listens.
func echoIn(t *testing.T, netns string, addr netip.AddrPort, reply string) (netip.AddrPort, func()) {
	t.Helper()
	var pc net.PacketConn
	if err := netnsx.Do(netns, func() (err error) { pc, err = net.ListenPacket("udp4", addr.String()); return }); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(reply+"\n"), from)
		}
	}()
	stop := func() { pc.Close(); <-done }
	t.Cleanup(stop)
	return pc.LocalAddr().(*net.UDPAddr).AddrPort(), sync.OnceFunc(stop)
}

// datagram sends one datagram from netns to addr and returns what
// became of it.
func datagram(netns string, addr netip.AddrPort) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), symptomTimeout)
	defer cancel()
	a, err := probe.Do(ctx, probe.Request{Netns: netns, Proto: "udp", To: addr})
	return classify(a.First(), err)
}

// snmp reads one counter of /proc/net/snmp (Tcp InCsumErrors) in netns.
func snmp(t *testing.T, netns, proto, field string) int {
	t.Helper()
	var v int
	err := netnsx.Do(netns, func() error {
		f, err := os.Open("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		defer f.Close()
		var names []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) == 0 || fs[0] != proto+":" {
				continue
			}
			if names == nil {
				names = fs
				continue
			}
			if i := slices.Index(names, field); i > 0 && i < len(fs) {
				v, err = strconv.Atoi(fs[i])
				return err
			}
		}
		return fmt.Errorf("no %s %s in /proc/net/snmp", proto, field)
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// pendingCase is a fault doctor cannot detect yet and its symptom.
type pendingCase struct {
	fault   string
	symptom func(e *clusterEnv, f *fault.Fault) (string, error)
}

var pendingCases = []pendingCase{
	{"gossip-blocked", func(e *clusterEnv, _ *fault.Fault) (string, error) {
		// Node0's gossip port from its peers: unreachable; node1's from
		// node0: fine.
		var seen []string
		node0 := netip.AddrPortFrom(e.st.Nodes[0].IP, addrplan.GossipPort)
		for _, peer := range e.st.Nodes[1:] {
			u := datagram(peer.Host, node0)
			ctx, cancel := context.WithTimeout(context.Background(), symptomTimeout)
			_, err := probe.Do(ctx, probe.Request{Netns: peer.Host, Proto: "tcp", To: node0, Mode: probe.Reached})
			cancel()
			tc := classify("", err)
			seen = append(seen, fmt.Sprintf("%s -> node0 udp %s tcp %s", peer.Name, u, tc))
			if u.kind != "timeout" || tc.kind != "timeout" {
				return strings.Join(seen, ", "), fmt.Errorf("%s reached node0's gossip port: udp %s, tcp %s", peer.Name, u, tc)
			}
		}
		back := datagram(e.st.Nodes[0].Host, netip.AddrPortFrom(e.st.Nodes[1].IP, addrplan.GossipPort))
		seen = append(seen, "node0 -> node1 udp "+back.String())
		if back.task != "node1" {
			return strings.Join(seen, ", "), fmt.Errorf("node0 -> node1's gossip port: %s", back)
		}
		return strings.Join(seen, ", "), nil
	}},
	{"dns-rules-missing", func(e *clusterEnv, f *fault.Fault) (string, error) {
		tk, _, _ := e.st.Task(f.Task)
		return e.dnsFails(tk, e.web.Tasks[1])
	}},
	{"dns-no-listener", func(e *clusterEnv, f *fault.Fault) (string, error) {
		tk, _, _ := e.st.Task(f.Task)
		return e.dnsFails(tk, e.web.Tasks[1])
	}},
	{"subnet-overlap", func(e *clusterEnv, f *fault.Fault) (string, error) {
		// A host on the overlapping LAN network answers node0, not node0's
		// task (db.1: a dnsrr task, no ingress filter), which still
		// reaches the rest of the LAN through docker_gwbridge.
		// (Each echo is bound to its address, so it answers from it.)
		lanHost, stop := echoIn(e.t, e.st.Client.Netns, netip.AddrPortFrom(f.Address, 0), "lan-host")
		defer stop()
		clientAddr, stopClient := echoIn(e.t, e.st.Client.Netns, netip.AddrPortFrom(e.st.Client.IP, 0), "client")
		defer stopClient()
		fromHost := datagram(e.st.Nodes[0].Host, lanHost)
		fromTask := datagram(e.db.Tasks[0].Netns, lanHost)
		client := datagram(e.db.Tasks[0].Netns, clientAddr)
		s := fmt.Sprintf("%s from node0: %s, from db.1: %s; the client at %s from db.1: %s", lanHost, fromHost, fromTask, clientAddr, client)
		if fromHost.task != "lan-host" || client.task != "client" || fromTask.kind == "ok" {
			return s, errors.New("want node0 and db.1's path to the LAN to work, db.1 to the overlapping network to fail")
		}
		return s, nil
	}},
	{"bad-checksum", func(e *clusterEnv, _ *fault.Fault) (string, error) {
		// Node0's overlay traffic goes bad on the way in: through node1
		// the request to web.1 (on node0) stalls, through node0 the
		// answers of web.2 and web.3 do; checksum errors count where
		// the packets end.
		task, sbox := e.web.Tasks[0].Netns, e.st.Nodes[0].NetnsDir+"/"+addrplan.SandboxName
		before := snmp(e.t, task, "Tcp", "InCsumErrors") + snmp(e.t, sbox, "Tcp", "InCsumErrors")
		// A capture at the first hop after decapsulation sees the bad
		// segments, marked complete.
		capt, err := captureCsum(e.st.Nodes[0].NetnsDir+"/1-"+e.st.OverlayID, addrplan.VXLANDev)
		if err != nil {
			return "", err
		}
		s1, err := e.webFailsVia(1, 1, "web.2", "web.3")
		if err != nil {
			capt.stop()
			return s1, err
		}
		s0, err := e.webFailsVia(0, 2, "web.1")
		bad, partial, good := capt.stop()
		if err != nil {
			return s1 + "; " + s0, err
		}
		after := snmp(e.t, task, "Tcp", "InCsumErrors") + snmp(e.t, sbox, "Tcp", "InCsumErrors")
		s := fmt.Sprintf("%s; %s; TcpInCsumErrors in web.1 and node0's sandbox %d -> %d; node0's vxlan0 received %d TCP segments complete with a wrong checksum, %d complete and right, %d not computed yet",
			s1, s0, before, after, bad, good, partial)
		if after <= before || bad == 0 || partial != 0 {
			return s, errors.New("want checksum errors counted on node0 and bad segments marked complete at its vxlan0")
		}
		return s, nil
	}},
	{"firewall-split", func(e *clusterEnv, _ *fault.Fault) (string, error) {
		s0, err := e.webFailsVia(0, 3)
		if err != nil {
			return s0, err
		}
		return s0 + "; via node1: every task", e.allWeb(1)
	}},
	{"stale-neigh", func(e *clusterEnv, f *fault.Fault) (string, error) {
		if f.Task != "web.2" {
			return "", fmt.Errorf("stale neighbour of %s, want web.2", f.Task)
		}
		return e.webFailsVia(0, 1, "web.1", "web.3")
	}},
	{"vtep-source", func(e *clusterEnv, _ *fault.Fault) (string, error) {
		// Node0's VXLAN packets leave from the wrong address both ways:
		// its requests to web.2 and web.3, and web.1's answers to
		// node1's sandbox.
		s0, err := e.webFailsVia(0, 2, "web.1")
		if err != nil {
			return s0, err
		}
		s1, err := e.webFailsVia(1, 1, "web.2", "web.3")
		return s0 + "; " + s1, err
	}},
}

// TestPendingFaults injects each fault of issue 13 that doctor has no
// detector for yet (Kind.Pending) on node0 of a 3-node mesh, checks the
// symptom with real traffic, and that repair puts back exactly what was
// there. The detector engineer moves each into TestDoctorMatrix once
// doctor reports its code.
func TestPendingFaults(t *testing.T) {
	e := newCluster(t)
	base := takeFingerprint(t, e.st)
	for n := range e.st.Nodes {
		if err := e.allWeb(n); err != nil {
			t.Fatalf("healthy mesh via node%d: %v", n, err)
		}
	}
	if err := e.everyTaskResolves(); err != nil {
		t.Fatalf("healthy mesh: %v", err)
	}
	var report strings.Builder
	defer func() { fmt.Print(report.String()) }()
	cases := map[string]pendingCase{}
	for _, c := range pendingCases {
		cases[c.fault] = c
	}
	for _, k := range fault.Kinds() {
		c, ok := cases[k.Name]
		switch {
		case k.Pending && !ok:
			t.Errorf("fault %s is pending a detector and has no symptom case", k.Name)
			continue
		case !k.Pending && ok:
			t.Errorf("fault %s has a detector (not pending): move its case to TestDoctorMatrix", k.Name)
			continue
		case !ok:
			continue
		}
		if len(k.Evidence) == 0 || k.Confirm == "" || k.Code != k.Name {
			t.Errorf("fault %s: evidence %d, confirm %q, code %s", k.Name, len(k.Evidence), k.Confirm, k.Code)
		}
		f := e.breakFault(k.Name, "node0")
		if f.Code != k.Code {
			t.Errorf("%s: break says doctor must report %s", k.Name, f.Code)
		}
		seen, err := c.symptom(e, f)
		verdict := "symptom seen"
		if err != nil {
			verdict = "SYMPTOM NOT SEEN: " + err.Error()
			t.Errorf("%s: %v (%s)", k.Name, err, seen)
		}
		e.repair()
		d := diffFingerprints(base, takeFingerprint(t, e.st))
		if len(d) > 0 {
			t.Errorf("%s: repair is not exact: %s", k.Name, strings.Join(d, "; "))
		}
		for n := range e.st.Nodes {
			if err := e.allWeb(n); err != nil {
				t.Errorf("%s: after repair, via node%d: %v", k.Name, n, err)
			}
		}
		if err := e.everyTaskResolves(); err != nil {
			t.Errorf("%s: after repair: %v", k.Name, err)
		}
		fmt.Fprintf(&report, "  pending %-18s %-18s %s: %s (repair exact: %v)\n", k.Name, k.Code, verdict, seen, len(d) == 0)
	}
}

// TestNodeFaults: on a 3-node mesh, a fault injected with --node changes
// that node and no other (the rest of the mesh keeps answering), and
// repair undoes it exactly (issue 14's cluster faults: one node out of
// step with the rest).
func TestNodeFaults(t *testing.T) {
	e := newCluster(t)
	base := takeFingerprint(t, e.st)
	for _, c := range []struct {
		fault, node string
		// where the fingerprint may change: places of takeFingerprint
		places []string
		check  func() (string, error)
	}{
		{"stale-backend", "node1", []string{"node1/" + addrplan.SandboxName}, func() (string, error) {
			outs := e.webVia(4, 1)
			if err := expectMix(outs, 1, "timeout", "web.1", "web.2", "web.3"); err != nil {
				return summary(outs), err
			}
			return "via node1: " + summary(outs) + "; via node0 and node2: every task", errors.Join(e.allWeb(0), e.allWeb(2))
		}},
		{"no-dnat", "node2", []string{"node2"}, func() (string, error) {
			outs := e.webVia(2, 2)
			if err := expectMix(outs, 2, "refused"); err != nil {
				return summary(outs), err
			}
			return "via node2: " + summary(outs) + "; via node0 and node1: every task", errors.Join(e.allWeb(0), e.allWeb(1))
		}},
		{"no-fdb", "node2", []string{"node2/1-" + e.st.OverlayID}, func() (string, error) {
			s, err := e.webFailsVia(2, 1, "web.2", "web.3")
			if err != nil {
				return s, err
			}
			return s + "; via node0 and node1: every task", errors.Join(e.allWeb(0), e.allWeb(1))
		}},
	} {
		f := e.breakFault(c.fault, c.node)
		if f.Node != c.node {
			t.Errorf("%s: broke %s, asked for %s", c.fault, f.Node, c.node)
		}
		changed := map[string]bool{}
		for _, l := range diffFingerprints(base, takeFingerprint(t, e.st)) {
			place, _, _ := strings.Cut(l, ":")
			changed[place] = true
		}
		if len(changed) == 0 {
			t.Errorf("%s --node %s changed nothing", c.fault, c.node)
		}
		for place := range changed {
			if !slices.Contains(c.places, place) {
				t.Errorf("%s --node %s changed %s", c.fault, c.node, place)
			}
		}
		seen, err := c.check()
		if err != nil {
			t.Errorf("%s --node %s: %v (%s)", c.fault, c.node, err, seen)
		}
		e.repair()
		if d := diffFingerprints(base, takeFingerprint(t, e.st)); len(d) > 0 {
			t.Errorf("%s --node %s: repair is not exact: %s", c.fault, c.node, strings.Join(d, "; "))
		}
		var wg sync.WaitGroup
		errs := make([]error, len(e.st.Nodes))
		for n := range e.st.Nodes {
			wg.Add(1)
			go func() { defer wg.Done(); errs[n] = e.allWeb(n) }()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Errorf("%s --node %s: after repair: %v", c.fault, c.node, err)
		}
		fmt.Printf("  node fault %-14s on %s: changed %v; %s\n", c.fault, c.node, slices.Sorted(maps.Keys(changed)), seen)
	}
}
