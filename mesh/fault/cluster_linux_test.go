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
	"testing"

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
