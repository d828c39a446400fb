package addrplan

import (
	"net/netip"
	"strings"
	"testing"
)

// The ingress network's order: gateway, sandboxes, VIPs, tasks. A 2-node
// mesh with web and dns (the fault matrix's) puts web.1 on .6 and web.2 on
// .7; a one-node world with one service has its first task on .4.
func TestIngressOrder(t *testing.T) {
	for _, tc := range []struct {
		g                Ingress
		sbox, vip, task0 string
	}{
		{Ingress{Nodes: 2, Services: 2}, "10.0.0.2", "10.0.0.4", "10.0.0.6"},
		{Ingress{Nodes: 1, Services: 1}, "10.0.0.2", "10.0.0.3", "10.0.0.4"},
		{Ingress{Nodes: 3, Services: 1}, "10.0.0.2", "10.0.0.5", "10.0.0.6"},
	} {
		if got := tc.g.Sandbox(0).String(); got != tc.sbox {
			t.Errorf("%+v: sandbox %s, want %s", tc.g, got, tc.sbox)
		}
		if got := tc.g.VIP(0).String(); got != tc.vip {
			t.Errorf("%+v: VIP %s, want %s", tc.g, got, tc.vip)
		}
		if got := tc.g.Task(0).String(); got != tc.task0 {
			t.Errorf("%+v: task 0 %s, want %s", tc.g, got, tc.task0)
		}
	}
	if IngressGW.String() != "10.0.0.1" || SandboxGWIP.String() != "172.18.0.2" || GWBridgeIP.String() != "172.18.0.1" {
		t.Errorf("gateways: %s %s %s", IngressGW, SandboxGWIP, GWBridgeIP)
	}
	if NodeIP(1).String() != "192.168.77.11" || TaskGWIP(0).String() != "172.18.0.3" {
		t.Errorf("node1 %s, first task's gwbridge address %s", NodeIP(1), TaskGWIP(0))
	}
}

func TestFits(t *testing.T) {
	if IngressHosts() != 254 {
		t.Fatalf("IngressHosts = %d", IngressHosts())
	}
	g := Ingress{Nodes: 2, Services: 3}
	if err := g.Fits(248); err != nil {
		t.Errorf("253 addresses: %v", err)
	}
	if err := g.Fits(249); err == nil || !strings.Contains(err.Error(), "need 254 addresses") {
		t.Errorf("254 addresses: %v", err)
	}
	if last := g.Task(247); !IngressSubnet.Contains(last) || last.String() != "10.0.0.254" {
		t.Errorf("last task %s", last)
	}
}

// Ids and MACs as Docker spells them, and stable: a mesh named demo has
// had the overlay 1-bmsrnxf2q3 since its first recording
// (fixtures/cmdout/vm-ipvs-weight-zero).
func TestIDs(t *testing.T) {
	if got := NetworkID("demo", "ingress"); got != "bmsrnxf2q3" {
		t.Errorf("NetworkID = %s", got)
	}
	if got := ContainerID("demo", "web", "1"); got != "b8ecbbeca66a" {
		t.Errorf("ContainerID = %s", got)
	}
	if got := VethName("demo", "x", "ingress", "0"); got != "veth0f9c0a2" {
		t.Errorf("VethName = %s", got)
	}
	if got := MAC(netip.MustParseAddr("10.0.0.5")); got != "02:42:0a:00:00:05" {
		t.Errorf("MAC = %s", got)
	}
	if got := Nth(netip.MustParsePrefix("10.0.0.0/16"), 300); got.String() != "10.0.1.44" {
		t.Errorf("Nth = %s", got)
	}
}

// The resolver's ports fall in the ephemeral range, differ per protocol
// and from the task's own ports, and are stable.
func TestResolverPorts(t *testing.T) {
	seen := map[int]bool{}
	for i := range 200 {
		id := ContainerID("m", "web", string(rune('a'+i%26)), strings.Repeat("x", i))
		tcp, udp := ResolverPorts([]int{80}, id)
		if tcp == udp || tcp < 32768 || tcp > 60999 || udp < 32768 || udp > 60999 {
			t.Fatalf("%s: tcp %d udp %d", id, tcp, udp)
		}
		if t2, u2 := ResolverPorts([]int{80}, id); t2 != tcp || u2 != udp {
			t.Fatalf("%s: not stable: %d/%d then %d/%d", id, tcp, udp, t2, u2)
		}
		if t3, _ := ResolverPorts([]int{tcp}, id); t3 == tcp {
			t.Fatalf("%s: tcp port %d not avoided", id, tcp)
		}
		seen[tcp], seen[udp] = true, true
	}
	if len(seen) < 300 {
		t.Errorf("only %d distinct ports over 200 containers", len(seen))
	}
	if SpareLANIP(0).String() != "192.168.77.254" || SpareLANIP(3).String() != "192.168.77.251" {
		t.Errorf("spare LAN addresses %s %s", SpareLANIP(0), SpareLANIP(3))
	}
}
