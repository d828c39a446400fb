package capture

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/pcapio"
	"github.com/vishvananda/netlink"
)

// traceWorld probes the world's published port from its client and
// captures everywhere.
func traceWorld(t *testing.T, w *world, proto string, port uint16, count int, pcap *bytes.Buffer) *trace.Result {
	t.Helper()
	env := w.env(t, proto, int(port))
	cfg := Config{
		Env:    env,
		Client: &trace.Client{Path: w.client, Ifname: "eth0", Addr: w.cli},
		Probe:  &Probe{Netns: w.client, From: "client", To: netipAP(w.node, port), Proto: proto, Count: count, Timeout: time.Second},
		Live:   Options{Count: count, Timeout: 15 * time.Second},
	}
	if pcap != nil {
		cfg.Pcap = pcap
	}
	res, err := Trace(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	dumpResult(t, res)
	return res
}

func rewriteOf(f trace.Flow, kind string) *trace.Rewrite {
	for i := range f.Rewrites {
		if f.Rewrites[i].Kind == kind {
			return &f.Rewrites[i]
		}
	}
	return nil
}

// checkMeshFlow checks what every answered flow through the world (or
// the mesh) must show: the host's DNAT, the sandbox's load balancer and
// SNAT, the task's REDIRECT, each explained by its rule. The REDIRECT is
// invisible on the wire: a live trace confirms it in conntrack, a replay
// has only the model.
func checkMeshFlow(t *testing.T, f trace.Flow, published, target int, redirectSeen string) {
	t.Helper()
	if !f.Complete || !f.Answered {
		t.Errorf("flow %d: complete %v answered %v", f.ID, f.Complete, f.Answered)
	}
	if f.Backend == nil || f.Backend.Netns == nil {
		t.Fatalf("flow %d: backend %+v, want a task", f.ID, f.Backend)
	}
	if r := rewriteOf(f, "dnat"); r == nil || r.Netns != "host" || !strings.Contains(r.Rule, "DOCKER-INGRESS") || r.Seen != "packets" {
		t.Errorf("flow %d: dnat %+v", f.ID, r)
	}
	if r := rewriteOf(f, "ipvs"); r == nil || r.Netns != "ingress_sbox" || r.FWMark == 0 || r.Impl != "iptables" ||
		!strings.HasPrefix(r.To, f.Backend.IP+":") || !strings.Contains(r.Rule, "--to-destination "+f.Backend.IP) || r.MarkRule == "" {
		t.Errorf("flow %d: ipvs %+v", f.ID, r)
	}
	if r := rewriteOf(f, "snat"); r == nil || r.Netns != "ingress_sbox" || r.Rule == "" {
		t.Errorf("flow %d: snat %+v", f.ID, r)
	}
	if r := rewriteOf(f, "redirect"); r == nil || r.Netns != *f.Backend.Netns || r.ToPort != target || r.Seen != redirectSeen {
		t.Errorf("flow %d: redirect %+v, want to port %d in %s seen in %s", f.ID, r, target, *f.Backend.Netns, redirectSeen)
	}
	for _, k := range []string{"un-dnat", "un-ipvs", "un-snat"} {
		if rewriteOf(f, k) == nil {
			t.Errorf("flow %d: no %s on the reply", f.ID, k)
		}
	}
	last := f.Hops[len(f.Hops)-1]
	if last.Netns != *f.Backend.Netns || last.Dir != "in" || !strings.HasSuffix(last.Dst, ":"+strconv.Itoa(published)) {
		t.Errorf("flow %d: last hop %+v, want the backend's ingress leg", f.ID, last)
	}
	if f.Hops[0].Netns != "client" || f.ReplyHops[len(f.ReplyHops)-1].Netns != "client" {
		t.Errorf("flow %d: does not start and end at the client", f.ID)
	}
}

func TestLiveWorldTCP(t *testing.T) {
	w := newWorld(t)
	var pcap bytes.Buffer
	res := traceWorld(t, w, "tcp", 8080, 2, &pcap)
	if len(res.Flows) != 2 {
		t.Fatalf("%d flows, want 2", len(res.Flows))
	}
	backends := map[string]bool{}
	for _, f := range res.Flows {
		checkMeshFlow(t, f, 8080, 80, "conntrack")
		if len(f.Hops) != 9 {
			t.Errorf("flow %d: %d hops, want 9 (client, uplink, gwbridge, veth, 2 sandbox legs, 2 overlay ports, task)", f.ID, len(f.Hops))
		}
		if f.Backend != nil {
			backends[f.Backend.IP] = true
		}
		if len(f.Conntrack) < 3 {
			t.Errorf("flow %d: %d conntrack entries, want host, sandbox and task", f.ID, len(f.Conntrack))
		}
	}
	if len(backends) != 2 {
		t.Errorf("backends %v: round robin should reach both tasks", backends)
	}
	for _, p := range res.Probes {
		if p.Error != "" || !strings.HasPrefix(p.Answer, "task-") {
			t.Errorf("probe %+v", p)
		}
	}
	checkReplay(t, res, pcap.Bytes())
}

// checkReplay reads the pcapng a trace wrote back: the same flows, and
// tshark reads it.
func checkReplay(t *testing.T, res *trace.Result, pcap []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "trace.pcapng")
	if err := os.WriteFile(f, pcap, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := pcapio.Replay([]string{f}, nil, trace.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Flows) != len(res.Flows) {
		t.Fatalf("replay: %d flows, trace had %d", len(rep.Flows), len(res.Flows))
	}
	for i := range res.Flows {
		a, b := res.Flows[i], rep.Flows[i]
		if a.Client != b.Client || a.Backend.IP != b.Backend.IP || len(a.Hops) != len(b.Hops) || len(a.Packets) != len(b.Packets) {
			t.Errorf("flow %d: replay %s -> %s (%d hops, %d packets), trace %s -> %s (%d, %d)", i,
				b.Client, b.Backend.IP, len(b.Hops), len(b.Packets), a.Client, a.Backend.IP, len(a.Hops), len(a.Packets))
		}
		for j := range a.Hops {
			if a.Hops[j] != b.Hops[j] {
				t.Errorf("flow %d hop %d: replay %+v, trace %+v", i, j, b.Hops[j], a.Hops[j])
			}
		}
	}
	tshark(t, f, res.Frames)
}

// tshark checks that Wireshark's reader takes the file: every frame,
// interface names as written.
func tshark(t *testing.T, file string, frames int) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tshark is not installed")
		}
		t.Skip("tshark is not installed")
	}
	out, err := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "frame.interface_name", "-e", "frame.comment").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", file, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != frames {
		t.Errorf("tshark read %d frames, trace wrote %d", len(lines), frames)
	}
	if !strings.Contains(string(out), "ingress_sbox/eth1\tflow 1 ") {
		t.Errorf("tshark shows no ingress_sbox/eth1 interface with flow comments:\n%.600s", out)
	}
}

func TestLiveWorldUDP(t *testing.T) {
	w := newWorld(t)
	res := traceWorld(t, w, "udp", 5353, 2, nil)
	if len(res.Flows) != 2 {
		t.Fatalf("%d flows, want 2", len(res.Flows))
	}
	for _, f := range res.Flows {
		checkMeshFlow(t, f, 5353, 53, "conntrack")
		if len(f.Packets) != 2 {
			t.Errorf("flow %d: %d packets, want a datagram and its answer", f.ID, len(f.Packets))
		}
	}
}

func TestLiveWorldBrokenRedirect(t *testing.T) {
	w := newWorld(t)
	// Drop the REDIRECT in every task: the request reaches the task on
	// the published port, where the ingress filter drops it.
	for _, task := range w.Tasks {
		w.iptables(t, task.Name, "-t", "nat", "-F", "PREROUTING")
	}
	res := traceWorld(t, w, "tcp", 8080, 1, nil)
	if len(res.Flows) != 1 {
		t.Fatalf("%d flows, want 1", len(res.Flows))
	}
	f := res.Flows[0]
	if f.Answered || f.Stop == nil {
		t.Fatalf("flow answered %v, stop %+v", f.Answered, f.Stop)
	}
	if !strings.HasPrefix(f.Stop.Packet, "request SYN") || f.Stop.Netns != *f.Backend.Netns || f.Stop.Ifname != "eth0" || f.Stop.Dir != "in" {
		t.Errorf("stop %+v, want the SYN last seen entering the task", f.Stop)
	}
	all := strings.Join(f.Stop.Expected, "\n")
	if f.Stop.Code != "filter-drop" || !strings.Contains(all, "filter INPUT") || !strings.Contains(all, "DROP") {
		t.Errorf("expected %q, want the model's filter INPUT drop", all)
	}
}

func TestLiveWorldBrokenSandbox(t *testing.T) {
	w := newWorld(t)
	// No load balancing in the sandbox: the request stops entering it.
	w.iptables(t, "ingress_sbox", "-t", "mangle", "-F", "PREROUTING")
	res := traceWorld(t, w, "tcp", 8080, 1, nil)
	if len(res.Flows) != 1 {
		t.Fatalf("%d flows, want 1", len(res.Flows))
	}
	s := res.Flows[0].Stop
	if s == nil || s.Netns != "ingress_sbox" {
		t.Fatalf("stop %+v, want ingress_sbox", s)
	}
	// The sandbox itself answers with a RST (nothing listens on
	// 172.18.0.2:8080) or the SYN stops at its gwbridge leg.
	if s.Ifname != "eth1" {
		t.Errorf("stop at %s, want eth1", s.Ifname)
	}
}

func TestLiveNothingLeftBehind(t *testing.T) {
	w := newWorld(t)
	before := packetSockets(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	env := w.env(t, "tcp", 8080)
	start := time.Now()
	res, err := Trace(ctx, Config{Env: env, Client: &trace.Client{Path: w.client, Ifname: "eth0"}, Live: Options{Count: 5}})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("an interrupted trace took %s to stop", time.Since(start))
	}
	if !strings.Contains(strings.Join(res.Notes, " "), "interrupted") {
		t.Errorf("notes %q: want the capture to say it was interrupted", res.Notes)
	}
	opened := 0
	for _, p := range res.Points {
		if p.Error == "" {
			opened++
		}
	}
	if opened < 8 {
		t.Errorf("only %d points opened: %+v", opened, res.Points)
	}
	if after := packetSockets(t, w); after != before {
		t.Errorf("packet sockets in the world: %d before, %d after the trace", before, after)
	}
}

// packetSockets counts the AF_PACKET sockets open in the world's
// namespaces (/proc/net/packet, read from a thread inside each).
func packetSockets(t *testing.T, w *world) int {
	t.Helper()
	paths := []string{w.HostPath, w.client, filepath.Join(w.Dir, "ingress_sbox")}
	n := 0
	for _, p := range paths {
		err := netnsx.Do(p, func() error {
			b, err := os.ReadFile("/proc/thread-self/net/packet")
			n += strings.Count(string(b), "\n") - 1
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// TestLiveWorldUplinkInBridge: the node's uplink enslaved to a bridge that
// holds the node's address and the default route (eth0 a port of br0, as
// many hosts are set up).
// The address trace probes (the node's) is the bridge's, the uplink it
// captures on is the bridge, and the probe is answered.
func TestLiveWorldUplinkInBridge(t *testing.T) {
	w := newWorld(t)
	err := netnsx.Do(w.HostPath, func() error {
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0", MTU: 1500}}
		if err := netlink.LinkAdd(br); err != nil {
			return err
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: w.node.AsSlice(), Mask: net.CIDRMask(24, 32)}}
		if err := netlink.AddrDel(eth0, a); err != nil {
			return err
		}
		if err := netlink.LinkSetMaster(eth0, br); err != nil {
			return err
		}
		if err := netlink.AddrAdd(br, a); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(br); err != nil {
			return err
		}
		gw := addrplan.Nth(addrplan.LANSubnet, 1) // the LAN's router
		return netlink.RouteAdd(&netlink.Route{LinkIndex: br.Attrs().Index, Gw: gw.AsSlice()})
	})
	if err != nil {
		t.Fatalf("host: eth0 into br0: %v", err)
	}
	env := w.env(t, "tcp", 8080)
	n := env.Nodes[0]
	n.Addr = trace.NodeAddr(n.Model)
	if n.Addr != w.node {
		t.Fatalf("node address %v, want %v (br0's)", n.Addr, w.node)
	}
	host := n.Model.Lookup("host")
	if up := hostUplink(host); up == nil || up.Name != "br0" {
		t.Errorf("uplink %+v, want br0", up)
	}
	res, err := Trace(context.Background(), Config{Env: env, Client: &trace.Client{Path: w.client, Ifname: "eth0", Addr: w.cli},
		Probe: &Probe{Netns: w.client, From: "client", To: netip.AddrPortFrom(n.Addr, 8080), Proto: "tcp", Count: 1, Timeout: time.Second},
		Live:  Options{Count: 1, Timeout: 15 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Probes) != 1 || res.Probes[0].Error != "" || len(res.Flows) != 1 || !res.Flows[0].Answered {
		dumpResult(t, res)
		t.Fatalf("probes %+v, %d flows: want one answered", res.Probes, len(res.Flows))
	}
}
