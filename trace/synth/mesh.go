package synth

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/meshtrace/meshtrace/internal/addrplan"
)

// The capture points of a two-node routing mesh shaped like the one
// `meshtrace mesh up` builds, labelled the way trace's pcapng names
// interfaces (the first node unprefixed).
var MeshPoints = []string{
	"client/eth0",                    // 0
	"host/eth0",                      // 1 node0 uplink
	"host/docker_gwbridge",           // 2
	"host/veth0a1b2c3",               // 3 to the sandbox
	"ingress_sbox/eth1",              // 4 gwbridge leg
	"ingress_sbox/eth0",              // 5 ingress leg
	"1-ovl0000001/veth1a1b2c3",       // 6 overlay port of the sandbox
	"1-ovl0000001/veth2a1b2c3",       // 7 overlay port of the local task
	"0a1b2c3d4e5f/eth0",              // 8 local task
	"1-ovl0000001/vxlan0",            // 9 node0 VTEP
	"node1/host/eth0",                // 10 node1 uplink
	"node1/1-ovl0000001/vxlan0",      // 11 node1 VTEP
	"node1/1-ovl0000001/veth3a1b2c3", // 12 overlay port of the remote task
	"node1/5f4e3d2c1b0a/eth0",        // 13 remote task
}

// Addresses of the synthetic mesh: the plan's (internal/addrplan) for
// `mesh up --service web:8080:80x2 --service dns:5353:53/udpx2`, web.1 on
// node0 and web.2 on node1.
var (
	meshIngress = addrplan.Ingress{Nodes: 2, Services: 2}
	ClientIP    = addrplan.ClientIP
	Node0IP     = addrplan.NodeIP(0)
	Node1IP     = addrplan.NodeIP(1)
	SandboxGW   = addrplan.SandboxGWIP
	SandboxIng  = meshIngress.Sandbox(0)
	LocalTask   = meshIngress.Task(0)
	RemoteTask  = meshIngress.Task(1)
)

// Sighting is one frame at one point.
type Sighting struct {
	Point int
	Out   bool
	TS    int64 // unix nanoseconds
	Frame []byte
}

// Conn describes one synthetic connection through the mesh.
type Conn struct {
	ClientPort uint16
	Published  uint16 // 8080
	Remote     bool   // served by the task on node1, across VXLAN
	Start      int64
	ISN, SISN  uint32 // client and server initial sequence numbers
	ID, SID    uint16 // first IP IDs of client and server
	Request    []byte // the client's data (an HTTP GET)
	Response   []byte
	// ESP, when set, encrypts the underlay legs (an encrypted overlay):
	// ESP packets where VXLAN would be.
	ESP *Encryption
}

type hop struct {
	point int
	out   bool
	vxlan int // 0: no, 1: node0 -> node1, 2: node1 -> node0
	// stage selects the addresses: 0 client side, 1 after DNAT, 2 after
	// the load balancer and SNAT.
	stage int
}

func (c Conn) route() []hop {
	hs := []hop{{0, true, 0, 0}, {1, false, 0, 0}, {2, true, 0, 1}, {3, true, 0, 1}, {4, false, 0, 1}, {5, true, 0, 2}, {6, false, 0, 2}}
	if !c.Remote {
		return append(hs, hop{7, true, 0, 2}, hop{8, false, 0, 2})
	}
	return append(hs, hop{9, true, 0, 2}, hop{1, true, 1, 2}, hop{10, false, 1, 2}, hop{11, false, 0, 2}, hop{12, true, 0, 2}, hop{13, false, 0, 2})
}

// Emit produces every sighting of the connection's ten packets (SYN,
// SYN/ACK, ACK, request, ACK, response, ACK, FIN/ACK, FIN/ACK, ACK), each
// at every hop with the addresses NAT gives it there, 3 µs apart, replies
// on the reversed route.
func (c Conn) Emit(emit func(Sighting)) {
	task := LocalTask
	if c.Remote {
		task = RemoteTask
	}
	clientEnd := [3]netip.AddrPort{
		netip.AddrPortFrom(ClientIP, c.ClientPort), netip.AddrPortFrom(ClientIP, c.ClientPort), netip.AddrPortFrom(SandboxIng, c.ClientPort),
	}
	serverEnd := [3]netip.AddrPort{
		netip.AddrPortFrom(Node0IP, c.Published), netip.AddrPortFrom(SandboxGW, c.Published), netip.AddrPortFrom(task, c.Published),
	}
	cseq, sseq := c.ISN, c.SISN
	cid, sid := c.ID, c.SID
	ts := c.Start
	type pkt struct {
		fromClient bool
		flags      uint8
		payload    []byte
	}
	pkts := []pkt{
		{true, SYN, nil}, {false, SYN | ACK, nil}, {true, ACK, nil}, {true, PSH | ACK, c.Request},
		{false, ACK, nil}, {false, PSH | ACK, c.Response}, {true, ACK, nil},
		{false, FIN | ACK, nil}, {true, FIN | ACK, nil}, {false, ACK, nil},
	}
	route := c.route()
	for _, p := range pkts {
		var seq, ack uint32
		var id uint16
		if p.fromClient {
			seq, ack, id = cseq, sseq, cid
			cid++
		} else {
			seq, ack, id = sseq, cseq, sid
			sid++
		}
		if p.flags == SYN {
			ack = 0
		}
		hops := route
		if !p.fromClient {
			hops = reversed(route)
		}
		var esp []byte
		for i, h := range hops {
			src, dst := clientEnd[h.stage], serverEnd[h.stage]
			if !p.fromClient {
				src, dst = dst, src
			}
			ttl := uint8(64 - i/3)
			ip := Pkt{Src: src, Dst: dst, Proto: TCP, ID: id, TTL: ttl, Seq: seq, Ack: ack, Flags: p.flags, Payload: p.payload}.IPv4()
			frame := Ether(MAC(src.Addr()), MAC(dst.Addr()), ip)
			if h.vxlan != 0 {
				a, b := Node0IP, Node1IP
				if !p.fromClient {
					a, b = b, a
				}
				vx := VXLAN(a, b, 49152+c.ClientPort%16384, addrplan.IngressVNI, 0, frame)
				if c.ESP != nil { // encrypted once, by the sending host: both underlays see the one ESP packet
					if esp == nil {
						esp = c.ESP.esp(a, b, vx)
					}
					vx = esp
				}
				frame = Ether(MAC(a), MAC(b), vx)
			}
			out := h.out
			if !p.fromClient {
				out = !out
			}
			emit(Sighting{Point: h.point, Out: out, TS: ts, Frame: frame})
			ts += 3000
		}
		n := uint32(len(p.payload))
		if p.flags&(SYN|FIN) != 0 {
			n++
		}
		if p.fromClient {
			cseq += n
		} else {
			sseq += n
		}
		ts += 20000
	}
}

func reversed(hs []hop) []hop {
	out := make([]hop, len(hs))
	for i, h := range hs {
		out[len(hs)-1-i] = h
	}
	return out
}

// HTTP returns a request and a response like the mesh's probe and tasks
// exchange.
func HTTP(task string) (req, resp []byte) {
	req = []byte("GET / HTTP/1.0\r\nHost: 192.168.77.10:8080\r\nUser-Agent: meshtrace-probe\r\n\r\n")
	body := task + "\n"
	resp = []byte(fmt.Sprintf("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	return req, resp
}

// HTTPConn is an HTTP connection from the client's port to the published
// port 8080 (served across VXLAN when remote), starting at start after
// 2023-11-14T22:13:20Z, with ISNs and IP IDs derived from isn: the tests'
// usual connection.
func HTTPConn(port uint16, remote bool, start time.Duration, isn uint32) Conn {
	req, resp := HTTP("web.1")
	return Conn{ClientPort: port, Published: 8080, Remote: remote, Start: time.Unix(1700000000, 0).Add(start).UnixNano(),
		ISN: isn, SISN: isn ^ 0x5a5a5a5a, ID: uint16(isn), SID: uint16(isn >> 16), Request: req, Response: resp}
}
