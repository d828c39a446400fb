package trace

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/meshtrace/meshtrace/trace/synth"
)

// A SYN from the mesh's client as node0's uplink received it
// (meshtrace trace --mesh, frame 1 of host/eth0):
// 192.168.77.9:60368 -> 192.168.77.10:8080, IP ID 0xc1cd, seq 0x057b35f7.
var synFrame = []byte{
	0x02, 0x42, 0xc0, 0xa8, 0x4d, 0x0a, 0x02, 0x42, 0xc0, 0xa8, 0x4d, 0x09, 0x08, 0x00, 0x45, 0x00,
	0x00, 0x3c, 0xc1, 0xcd, 0x40, 0x00, 0x40, 0x06, 0x5d, 0x8a, 0xc0, 0xa8, 0x4d, 0x09, 0xc0, 0xa8,
	0x4d, 0x0a, 0xeb, 0xd0, 0x1f, 0x90, 0x05, 0x7b, 0x35, 0xf7, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02,
	0xfa, 0xf0, 0x1b, 0x93, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0xaf, 0x05,
	0x19, 0x16, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
}

// The same kind of SYN after the sandbox's load balancer and SNAT, in
// VXLAN from node0 (192.168.77.10) to node1 (192.168.77.11), VNI 4096:
// inner 10.0.0.2:60370 -> 10.0.0.7:8080, IP ID 0x877e.
var vxlanFrame = []byte{
	0x02, 0x42, 0xc0, 0xa8, 0x4d, 0x0b, 0x02, 0x42, 0xc0, 0xa8, 0x4d, 0x0a, 0x08, 0x00, 0x45, 0x00,
	0x00, 0x6e, 0xcf, 0x99, 0x00, 0x00, 0x40, 0x11, 0x8f, 0x7f, 0xc0, 0xa8, 0x4d, 0x0a, 0xc0, 0xa8,
	0x4d, 0x0b, 0xd3, 0x96, 0x12, 0xb5, 0x00, 0x5a, 0xe9, 0x21, 0x08, 0x00, 0x00, 0x00, 0x00, 0x10,
	0x00, 0x00, 0x02, 0x42, 0x0a, 0x00, 0x00, 0x07, 0x02, 0x42, 0x0a, 0x00, 0x00, 0x02, 0x08, 0x00,
	0x45, 0x00, 0x00, 0x3c, 0x87, 0x7e, 0x40, 0x00, 0x3e, 0x06, 0xa1, 0x35, 0x0a, 0x00, 0x00, 0x02,
	0x0a, 0x00, 0x00, 0x07, 0xeb, 0xd2, 0x1f, 0x90, 0xdc, 0xfa, 0x88, 0x96, 0x00, 0x00, 0x00, 0x00,
	0xa0, 0x02, 0xfa, 0xf0, 0x14, 0x37, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
	0xf9, 0xd4, 0x72, 0x53, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
}

// A SYN in Linux cooked v2 (tcpdump -i any in node0's ingress_sbox):
// received on ifindex 3, 192.168.77.9:41512 -> 172.18.0.2:8080.
var sll2Frame = []byte{
	0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x06, 0x4e, 0x31, 0xe1, 0x72,
	0x23, 0xe1, 0x00, 0x00, 0x45, 0x00, 0x00, 0x3c, 0x60, 0x50, 0x40, 0x00, 0x3f, 0x06, 0x21, 0xa6,
	0xc0, 0xa8, 0x4d, 0x09, 0xac, 0x12, 0x00, 0x02, 0xa2, 0x28, 0x1f, 0x90, 0xad, 0x7b, 0x8b, 0xfc,
	0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0, 0xb9, 0xf4, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
	0x04, 0x02, 0x08, 0x0a, 0x69, 0xd3, 0xcc, 0xb5, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
}

func ip4(s string) IP4 { return IP4Of(netip.MustParseAddr(s)) }

func TestDecodeRealFrames(t *testing.T) {
	tests := []struct {
		name    string
		link    int
		data    []byte
		want    Packet
		vxlan   *Encap
		ifindex int32
		dir     Dir
	}{
		{"ethernet syn", LinkEthernet, synFrame,
			Packet{Src: ip4("192.168.77.9"), Dst: ip4("192.168.77.10"), SPort: 60368, DPort: 8080, ID: 0xc1cd, Proto: ProtoTCP, TTL: 64, Flags: FlagSYN, Seq: 0x057b35f7},
			nil, 0, DirUnknown},
		{"vxlan", LinkEthernet, vxlanFrame,
			Packet{Src: ip4("10.0.0.2"), Dst: ip4("10.0.0.7"), SPort: 60370, DPort: 8080, ID: 0x877e, Proto: ProtoTCP, TTL: 62, Flags: FlagSYN, Seq: 0xdcfa8896},
			&Encap{Src: ip4("192.168.77.10"), Dst: ip4("192.168.77.11"), SPort: 54166, DPort: 4789, VNI: 4096}, 0, DirUnknown},
		{"sll2", LinkSLL2, sll2Frame,
			Packet{Src: ip4("192.168.77.9"), Dst: ip4("172.18.0.2"), SPort: 41512, DPort: 8080, ID: 0x6050, Proto: ProtoTCP, TTL: 63, Flags: FlagSYN, Seq: 0xad7b8bfc},
			nil, 3, DirIn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Frame
			if err := Decode(tt.link, tt.data, &f); err != nil {
				t.Fatal(err)
			}
			got := f.Pkt
			got.Hash, got.Len = 0, 0 // checked below
			if got != tt.want {
				t.Errorf("packet\n got %+v\nwant %+v", got, tt.want)
			}
			if f.Pkt.Len != 0 {
				t.Errorf("payload length %d, want 0 for a SYN", f.Pkt.Len)
			}
			if (tt.vxlan != nil) != f.VXLAN || (tt.vxlan != nil && *tt.vxlan != f.Outer) {
				t.Errorf("vxlan %v outer %+v, want %+v", f.VXLAN, f.Outer, tt.vxlan)
			}
			if f.Ifindex != tt.ifindex || f.Dir != tt.dir {
				t.Errorf("ifindex %d dir %s, want %d %s", f.Ifindex, f.Dir, tt.ifindex, tt.dir)
			}
		})
	}
}

func TestDecodeSynthLinks(t *testing.T) {
	p := synth.Pkt{Src: netip.MustParseAddrPort("10.0.0.2:5000"), Dst: netip.MustParseAddrPort("10.0.0.9:53"), Proto: synth.UDP, ID: 7, Payload: []byte("hello")}
	ip := p.IPv4()
	mac := synth.MAC(netip.MustParseAddr("10.0.0.2"))
	for _, tc := range []struct {
		name string
		link int
		data []byte
		dir  Dir
	}{
		{"ethernet", LinkEthernet, synth.Ether(mac, mac, ip), DirUnknown},
		{"sll out", LinkSLL, synth.SLL(4, mac, ip), DirOut},
		{"sll host", LinkSLL, synth.SLL(0, mac, ip), DirIn},
		{"sll2 out", LinkSLL2, synth.SLL2(4, 9, mac, ip), DirOut},
		{"raw", LinkRaw, ip, DirUnknown},
		{"ipv4", LinkIPv4, ip, DirUnknown},
		{"null", LinkNull, append([]byte{2, 0, 0, 0}, ip...), DirUnknown},
		{"ethernet vlan", LinkEthernet, vlan(synth.Ether(mac, mac, ip)), DirUnknown},
		{"ethernet padded", LinkEthernet, append(synth.Ether(mac, mac, ip), make([]byte, 20)...), DirUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f Frame
			if err := Decode(tc.link, tc.data, &f); err != nil {
				t.Fatal(err)
			}
			if f.Pkt.Proto != ProtoUDP || f.Pkt.SPort != 5000 || f.Pkt.DPort != 53 || f.Pkt.ID != 7 || f.Pkt.Len != 5 || f.Dir != tc.dir {
				t.Errorf("got %+v dir %s", f.Pkt, f.Dir)
			}
			if want := payloadHash([]byte("hello"), 5); f.Pkt.Hash != want {
				t.Errorf("hash %x, want %x (padding must not count)", f.Pkt.Hash, want)
			}
		})
	}
}

func vlan(f []byte) []byte {
	out := append([]byte(nil), f[:12]...)
	out = append(out, 0x81, 0x00, 0x00, 0x05)
	return append(out, f[12:]...)
}

func TestDecodeRejects(t *testing.T) {
	mac := [6]byte{}
	udp := synth.Pkt{Src: netip.MustParseAddrPort("10.0.0.2:5000"), Dst: netip.MustParseAddrPort("10.0.0.9:53"), Proto: synth.UDP}.IPv4()
	frag := append([]byte(nil), udp...)
	frag[6], frag[7] = 0x00, 0x10 // offset 16
	icmp := append([]byte(nil), udp...)
	icmp[9] = 1
	arp := synth.Ether(mac, mac, udp)
	arp[12], arp[13] = 0x08, 0x06
	for _, tc := range []struct {
		name string
		link int
		data []byte
		want error
	}{
		{"empty", LinkEthernet, nil, ErrShort},
		{"arp", LinkEthernet, arp, ErrNotIPv4},
		{"fragment", LinkRaw, frag, ErrFragment},
		{"icmp", LinkRaw, icmp, ErrNotTCPUDP},
		{"short ip", LinkRaw, udp[:15], ErrShort},
		{"short udp", LinkRaw, udp[:24], ErrShort},
		{"ipv6", LinkRaw, append([]byte{0x60}, udp[1:]...), ErrNotIPv4},
		{"wifi", 105, udp, ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f Frame
			if err := Decode(tc.link, tc.data, &f); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	espFrame := synth.Ether(synth.MAC(synth.Node0IP), synth.MAC(synth.Node1IP), synth.ESP(synth.Node0IP, synth.Node1IP, 0, 0x45a82588, 3, 90, synth.GCM))
	for _, seed := range [][]byte{synFrame, vxlanFrame, sll2Frame, espFrame} {
		f.Add(LinkEthernet, seed)
		f.Add(LinkSLL2, seed)
		f.Add(LinkSLL, seed)
		f.Add(LinkRaw, seed)
	}
	f.Fuzz(func(t *testing.T, link int, data []byte) {
		var fr Frame
		if Decode(link, data, &fr) == nil && fr.Pkt.Proto != ProtoTCP && fr.Pkt.Proto != ProtoUDP && (fr.Pkt.Proto != ProtoESP || !fr.IsESP()) {
			t.Errorf("decoded protocol %d", fr.Pkt.Proto)
		}
	})
}
