package capture

import (
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/synth"
)

func frame(proto uint8, src, dst string) []byte {
	mac := synth.MAC(netip.MustParseAddr("10.0.0.2"))
	p := synth.Pkt{Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), Proto: proto, ID: 1, Flags: synth.SYN}
	return synth.Ether(mac, mac, p.IPv4())
}

func vxlanWrap(inner []byte) []byte {
	mac := synth.MAC(netip.MustParseAddr("192.168.77.10"))
	return synth.Ether(mac, mac, synth.VXLAN(netip.MustParseAddr("192.168.77.10"), netip.MustParseAddr("192.168.77.11"), 40000, 4096, 0, inner))
}

// espFrame is an encrypted overlay's VXLAN datagram on the underlay.
func espFrame() []byte {
	a, b := netip.MustParseAddr("192.168.77.10"), netip.MustParseAddr("192.168.77.11")
	return synth.Ether(synth.MAC(a), synth.MAC(b), synth.ESP(a, b, 0, 0x45a82588, 7, 120, synth.GCM))
}

func withOptions(f []byte) []byte {
	// IHL 6: one 4-byte option (NOPs) after the 20-byte header.
	out := append([]byte(nil), f[:14+20]...)
	out[14] = 0x46
	out = append(out, 1, 1, 1, 1)
	return append(out, f[14+20:]...)
}

func TestFilterProgram(t *testing.T) {
	tcp := trace.FilterSpec{Proto: trace.ProtoTCP, Ports: []uint16{8080, 80}, VXLAN: true}
	udp := trace.FilterSpec{Proto: trace.ProtoUDP, Ports: []uint16{5353, 53}}
	frag := frame(synth.TCP, "10.0.0.2:4000", "10.0.0.7:8080")
	frag[14+6] = 0x20 // MF, offset 0 would pass; set offset 1:
	frag[14+7] = 0x01
	arp := frame(synth.TCP, "10.0.0.2:4000", "10.0.0.7:8080")
	arp[12], arp[13] = 0x08, 0x06
	tests := []struct {
		name string
		spec trace.FilterSpec
		pkt  []byte
		want bool
	}{
		{"tcp dport", tcp, frame(synth.TCP, "192.168.77.9:40000", "192.168.77.10:8080"), true},
		{"tcp sport (reply)", tcp, frame(synth.TCP, "10.0.0.7:80", "10.0.0.2:40000"), true},
		{"tcp other port", tcp, frame(synth.TCP, "10.0.0.2:40000", "10.0.0.7:22"), false},
		{"udp on tcp filter", tcp, frame(synth.UDP, "10.0.0.2:40000", "10.0.0.7:8080"), false},
		{"vxlan inner tcp 8080", tcp, vxlanWrap(frame(synth.TCP, "10.0.0.2:40000", "10.0.0.7:8080")), true},
		{"vxlan inner tcp 22", tcp, vxlanWrap(frame(synth.TCP, "10.0.0.2:40000", "10.0.0.7:22")), false},
		{"vxlan inner udp", tcp, vxlanWrap(frame(synth.UDP, "10.0.0.2:40000", "10.0.0.7:8080")), false},
		{"vxlan not wanted", trace.FilterSpec{Proto: trace.ProtoTCP, Ports: []uint16{8080}}, vxlanWrap(frame(synth.TCP, "10.0.0.2:40000", "10.0.0.7:8080")), false},
		{"ip options", tcp, withOptions(frame(synth.TCP, "10.0.0.2:40000", "10.0.0.7:8080")), true},
		{"fragment", tcp, frag, false},
		{"arp", tcp, arp, false},
		{"udp dport", udp, frame(synth.UDP, "192.168.77.9:40000", "192.168.77.10:5353"), true},
		{"udp sport", udp, frame(synth.UDP, "10.0.0.8:53", "10.0.0.2:40000"), true},
		{"udp other", udp, frame(synth.UDP, "10.0.0.8:54", "10.0.0.2:40000"), false},
		{"tcp on udp filter", udp, frame(synth.TCP, "10.0.0.8:53", "10.0.0.2:40000"), false},
		{"udp vxlan inner", trace.FilterSpec{Proto: trace.ProtoUDP, Ports: []uint16{53}, VXLAN: true}, vxlanWrap(frame(synth.UDP, "10.0.0.2:40000", "10.0.0.7:53")), true},
		{"short", tcp, []byte{1, 2, 3}, false},
		{"esp kept", trace.FilterSpec{Proto: trace.ProtoTCP, Ports: []uint16{80}, VXLAN: true, ESP: true}, espFrame(), true},
		{"esp not wanted", tcp, espFrame(), false},
		{"esp spec keeps tcp", trace.FilterSpec{Proto: trace.ProtoTCP, Ports: []uint16{80}, VXLAN: true, ESP: true}, frame(synth.TCP, "10.0.0.2:40000", "10.0.0.7:80"), true},
		{"esp spec, tcp other port", trace.FilterSpec{Proto: trace.ProtoTCP, Ports: []uint16{80}, VXLAN: true, ESP: true}, frame(synth.TCP, "10.0.0.2:40000", "10.0.0.7:22"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog, err := Program(tt.spec, trace.DirUnknown, false)
			if err != nil {
				t.Fatal(err)
			}
			vm, err := bpf.NewVM(prog)
			if err != nil {
				t.Fatal(err)
			}
			n, err := vm.Run(tt.pkt)
			if err != nil {
				t.Fatal(err)
			}
			if got := n > 0; got != tt.want {
				t.Errorf("accepted %v (returned %d), want %v", got, n, tt.want)
			}
		})
	}
}

func TestFilterDirection(t *testing.T) {
	s := trace.FilterSpec{Proto: trace.ProtoTCP, Ports: []uint16{8080}}
	for _, dir := range []trace.Dir{trace.DirIn, trace.DirOut} {
		prog, err := Program(s, dir, false)
		if err != nil {
			t.Fatal(err)
		}
		if prog[0] != (bpf.LoadExtension{Num: bpf.ExtType}) {
			t.Errorf("%s: first instruction %v, want ld #type", dir, prog[0])
		}
		j, ok := prog[1].(bpf.JumpIf)
		if !ok || j.Val != 4 {
			t.Fatalf("%s: second instruction %v, want a test for PACKET_OUTGOING", dir, prog[1])
		}
		// out: continue when outgoing, in: continue when not.
		if dir == trace.DirOut && (j.SkipTrue != 0 || j.SkipFalse == 0) || dir == trace.DirIn && (j.SkipTrue == 0 || j.SkipFalse != 0) {
			t.Errorf("%s: jump %+v goes the wrong way", dir, j)
		}
		if _, err := Assemble(s, dir, false); err != nil {
			t.Errorf("%s: %v", dir, err)
		}
	}
	for _, bad := range []trace.FilterSpec{{Proto: 1, Ports: []uint16{1}}, {Proto: trace.ProtoTCP}, {Proto: trace.ProtoTCP, Ports: make([]uint16, 61)}} {
		if _, err := Program(bad, trace.DirIn, false); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
