// Package addrplan is the address plan of meshtrace's Swarm-shaped worlds,
// written once: the numbers Docker uses on a node (docker_gwbridge
// 172.18.0.0/16 with the ingress sandbox on .2, the ingress overlay
// 10.0.0.0/24 with br0 on .1, VNI 4096 on udp/4789, MTU 1450, firewall
// marks from 0x100, MACs 02:42 + the IPv4 address, ids spelled as Docker
// spells them), the LAN the worlds put their nodes on, and the order in
// which the ingress network's addresses are handed out.
//
// The mesh (mesh.NewPlan), the one-node test world (internal/dockerns) and
// the synthetic captures (trace/synth) lay out their worlds with it, so a
// capture, a test world and a mesh agree on every address.
package addrplan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
)

// The underlay: one LAN holding the client and the nodes.
var (
	LANSubnet = netip.MustParsePrefix("192.168.77.0/24")
	ClientIP  = netip.MustParseAddr("192.168.77.9")
	// firstNodeIP is node0's; node i has the i-th address after it.
	firstNodeIP = netip.MustParseAddr("192.168.77.10")
)

// A node's docker_gwbridge and the ingress overlay, as Docker numbers them.
var (
	GWSubnet      = netip.MustParsePrefix("172.18.0.0/16")
	GWBridgeIP    = Nth(GWSubnet, 1)
	SandboxGWIP   = Nth(GWSubnet, 2) // ingress_sbox's leg on docker_gwbridge
	IngressSubnet = netip.MustParsePrefix("10.0.0.0/24")
	IngressGW     = Nth(IngressSubnet, 1) // br0 in the overlay's namespace
)

// Fixed names and numbers, as Docker spells them.
const (
	GWBridge      = "docker_gwbridge"
	SandboxName   = "ingress_sbox"
	OverlayBridge = "br0"
	VXLANDev      = "vxlan0"
	IngressVNI    = 4096
	VXLANPort     = 4789
	OverlayMTU    = 1450
	// FirstFWMark is the first service's firewall mark; service i has
	// FirstFWMark+i.
	FirstFWMark = 0x100
	// GossipPort is NetworkDB's (memberlist's) port on every node, TCP
	// and UDP.
	GossipPort = 7946
)

// The kernel's default ephemeral port range (net.ipv4.ip_local_port_range),
// where the embedded DNS server's "random" ports fall as they do when
// dockerd binds 127.0.0.11:0.
const (
	ephemeralLow  = 32768
	ephemeralHigh = 60999
)

// ResolverPorts are the TCP and UDP ports of the embedded DNS server of
// the container named by parts: in the ephemeral range, stable for
// parts, different from each other and from avoid (the task's own
// ports), as random as dockerd's look.
func ResolverPorts(avoid []int, parts ...string) (tcp, udp int) {
	span := ephemeralHigh - ephemeralLow + 1
	taken := map[int]bool{}
	for _, a := range avoid {
		taken[a] = true
	}
	pick := func(proto string) int {
		for salt := 0; ; salt++ {
			b := hash(append(append([]string(nil), parts...), "resolver", proto, fmt.Sprint(salt))...)
			p := ephemeralLow + int(uint32(b[0])<<16|uint32(b[1])<<8|uint32(b[2]))%span
			if !taken[p] {
				taken[p] = true
				return p
			}
		}
	}
	return pick("tcp"), pick("udp")
}

// SpareLANIP is an address of the LAN that no node or client has: the
// i-th from the top (.254, .253, ...), for a node's second address.
func SpareLANIP(i int) netip.Addr {
	return Nth(LANSubnet, 1<<(LANSubnet.Addr().BitLen()-LANSubnet.Bits())-2-i)
}

// NodeIP is node i's address on the LAN (node0 192.168.77.10).
func NodeIP(i int) netip.Addr { return Nth(LANSubnet, 10+i) }

// TaskGWIP is the address of the i-th task of a node on its
// docker_gwbridge: the bridge has .1, the sandbox .2, tasks follow.
func TaskGWIP(i int) netip.Addr { return Nth(GWSubnet, 3+i) }

// Ingress hands out the ingress network's addresses the way the worlds
// do: .1 the gateway (br0), then one address per node's ingress sandbox,
// one VIP per service, then the tasks in order.
type Ingress struct {
	Nodes, Services int
}

// Sandbox is node's ingress sandbox address.
func (g Ingress) Sandbox(node int) netip.Addr { return Nth(IngressSubnet, 2+node) }

// VIP is service svc's ingress VIP.
func (g Ingress) VIP(svc int) netip.Addr { return Nth(IngressSubnet, 2+g.Nodes+svc) }

// Task is the i-th task's address, counting every service's tasks in
// service order.
func (g Ingress) Task(i int) netip.Addr { return Nth(IngressSubnet, 2+g.Nodes+g.Services+i) }

// Fits fails when the ingress network has too few addresses for the
// sandboxes, the VIPs and tasks tasks.
func (g Ingress) Fits(tasks int) error {
	need, avail := g.Nodes+g.Services+tasks, IngressHosts()-1
	if need > avail {
		return fmt.Errorf("%d nodes, %d services and their tasks need %d addresses on the ingress network %s, which has %d",
			g.Nodes, g.Services, need, IngressSubnet, avail)
	}
	return nil
}

// IngressHosts is the number of usable host addresses of IngressSubnet.
func IngressHosts() int { return 1<<(IngressSubnet.Addr().BitLen()-IngressSubnet.Bits()) - 2 }

// Nth returns the i-th address of an IPv4 prefix (its network address + i).
func Nth(p netip.Prefix, i int) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// HWAddr is the MAC Docker derives from an IPv4 address: 02:42 and the
// four address bytes.
func HWAddr(a netip.Addr) [6]byte {
	b := a.As4()
	return [6]byte{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

// MAC is HWAddr as text, 02:42:0a:00:00:05.
func MAC(a netip.Addr) string {
	m := HWAddr(a)
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// NetworkID is a Swarm network id's first 10 characters (base 36), stable
// for parts: the overlay's namespace is "1-" + it.
func NetworkID(parts ...string) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := hash(parts...)
	out := make([]byte, 10)
	for i := range out {
		out[i] = digits[int(b[i])%36]
	}
	return string(out)
}

// ContainerID is a container (task) id's first 12 hex characters, stable
// for parts: the task's namespace file is named by it.
func ContainerID(parts ...string) string { return hex.EncodeToString(hash(parts...))[:12] }

// VethName is a veth name as Docker makes them, "veth" + 7 hex, stable for
// parts.
func VethName(parts ...string) string { return "veth" + hex.EncodeToString(hash(parts...))[:7] }

func hash(parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}
