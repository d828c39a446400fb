package pcapio

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/synth"
)

// meshCapture is two synthetic connections as a trace would hold them.
func meshCapture(t testing.TB) *Capture {
	t.Helper()
	c := &Capture{Points: trace.PointsOf(synth.MeshPoints)}
	for _, cn := range []synth.Conn{synth.HTTPConn(40000, false, 0, 1000), synth.HTTPConn(40001, true, time.Millisecond, 90000)} {
		cn.Emit(func(s synth.Sighting) {
			var f trace.Frame
			if err := trace.Decode(trace.LinkEthernet, s.Frame, &f); err != nil {
				t.Fatal(err)
			}
			f.Point, f.TS, f.Dir = int32(s.Point), s.TS, trace.DirIn
			if s.Out {
				f.Dir = trace.DirOut
			}
			c.Frames = append(c.Frames, f)
			c.Data = append(c.Data, s.Frame)
		})
	}
	c.Sort()
	for i := range c.Frames {
		c.Frames[i].Num = int32(i + 1)
	}
	return c
}

func writeNg(t testing.TB, c *Capture) []byte {
	t.Helper()
	conns := trace.Correlate(slices.Clone(c.Frames), trace.Options{})
	comments := make([]string, len(c.Frames))
	for i, cn := range conns {
		Comments(comments, i+1, cn, c.Points, "")
	}
	var b bytes.Buffer
	if _, err := WritePcapng(&b, "", c, comments); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestPcapngRoundTrip(t *testing.T) {
	c := meshCapture(t)
	want := (&trace.Analysis{Points: c.Points}).Flows(trace.Correlate(slices.Clone(c.Frames), trace.Options{}))
	data := writeNg(t, c)

	rd := &Reader{}
	if err := rd.Read("mesh.pcapng", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if len(rd.Capture.Frames) != len(c.Frames) {
		t.Fatalf("read %d frames, wrote %d", len(rd.Capture.Frames), len(c.Frames))
	}
	for i, p := range rd.Capture.Points {
		if p.Label("") != c.Points[i].Label("") {
			t.Errorf("point %d: %q, want %q", i, p.Label(""), c.Points[i].Label(""))
		}
	}
	res, err := analyse("mesh.pcapng", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Flows) != len(want) {
		t.Fatalf("%d flows, want %d", len(res.Flows), len(want))
	}
	for i := range want {
		g, w := res.Flows[i], want[i]
		if g.Client != w.Client || g.Backend.IP != w.Backend.IP || len(g.Hops) != len(w.Hops) || len(g.Rewrites) != len(w.Rewrites) || !g.Complete {
			t.Errorf("flow %d: got %s via %d hops to %s (%d rewrites), want %s via %d hops to %s (%d)", i,
				g.Client, len(g.Hops), g.Backend.IP, len(g.Rewrites), w.Client, len(w.Hops), w.Backend.IP, len(w.Rewrites))
		}
		for j := range g.Hops {
			if g.Hops[j].Dir != w.Hops[j].Dir || g.Hops[j].Netns != w.Hops[j].Netns || g.Hops[j].Src != w.Hops[j].Src {
				t.Errorf("flow %d hop %d: %+v, want %+v", i, j, g.Hops[j], w.Hops[j])
			}
		}
	}
	// The remote flow crossed VXLAN and shows it.
	kinds := map[string]bool{}
	for _, rw := range res.Flows[1].Rewrites {
		kinds[rw.Kind] = true
	}
	for _, k := range []string{"dnat", "snat", "vxlan-encap", "vxlan-decap", "un-snat", "un-dnat"} {
		if !kinds[k] {
			t.Errorf("remote flow: no %s rewrite in %v", k, kinds)
		}
	}
}

func TestReadPcapLinkTypes(t *testing.T) {
	ip := synth.Pkt{Src: netip.MustParseAddrPort("10.0.0.2:40000"), Dst: netip.MustParseAddrPort("10.0.0.6:8080"), Proto: synth.TCP, Flags: synth.SYN, ID: 9}.IPv4()
	rep := synth.Pkt{Src: netip.MustParseAddrPort("10.0.0.6:8080"), Dst: netip.MustParseAddrPort("10.0.0.2:40000"), Proto: synth.TCP, Flags: synth.SYN | synth.ACK, Ack: 1}.IPv4()
	mac := synth.MAC(netip.MustParseAddr("10.0.0.6"))
	for _, tc := range []struct {
		name   string
		link   layers.LinkType
		frames [][]byte
		iface  string
		dirs   []trace.Dir
	}{
		{"ethernet", layers.LinkTypeEthernet, [][]byte{synth.Ether(mac, mac, ip), synth.Ether(mac, mac, rep)}, "", []trace.Dir{trace.DirUnknown, trace.DirUnknown}},
		{"sll", layers.LinkTypeLinuxSLL, [][]byte{synth.SLL(0, mac, ip), synth.SLL(4, mac, rep)}, "any", []trace.Dir{trace.DirIn, trace.DirOut}},
		{"sll2", layers.LinkType(trace.LinkSLL2), [][]byte{synth.SLL2(0, 2, mac, ip), synth.SLL2(4, 2, mac, rep)}, "if2", []trace.Dir{trace.DirIn, trace.DirOut}},
		{"raw", layers.LinkTypeRaw, [][]byte{ip, rep}, "", []trace.Dir{trace.DirUnknown, trace.DirUnknown}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			w := pcapgo.NewWriter(&b)
			if err := w.WriteFileHeader(65535, tc.link); err != nil {
				t.Fatal(err)
			}
			for i, f := range tc.frames {
				ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, int64(i)*1000), CaptureLength: len(f), Length: len(f)}
				if err := w.WritePacket(ci, f); err != nil {
					t.Fatal(err)
				}
			}
			data := b.Bytes()
			rd := &Reader{}
			if err := rd.Read("task.pcap", bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			if len(rd.Capture.Frames) != 2 {
				t.Fatalf("%d frames", len(rd.Capture.Frames))
			}
			for i, f := range rd.Capture.Frames {
				p := rd.Capture.Points[f.Point]
				if p.File != "task.pcap" || p.Ifname != tc.iface || f.Dir != tc.dirs[i] || int(f.Num) != i+1 {
					t.Errorf("frame %d: point %+v dir %s num %d", i, p, f.Dir, f.Num)
				}
			}
			res, _ := analyse("task.pcap", data)
			if len(res.Flows) != 1 || !res.Flows[0].Answered || res.Flows[0].Client != "10.0.0.2:40000" {
				t.Errorf("flows %+v", res.Flows)
			}
		})
	}
}

func TestReadBadInput(t *testing.T) {
	good := writeNg(t, meshCapture(t))
	var pcap bytes.Buffer
	w := pcapgo.NewWriter(&pcap)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	c := meshCapture(t)
	for i, f := range c.Frames {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(0, f.TS), CaptureLength: len(c.Data[i]), Length: len(c.Data[i])}, c.Data[i])
	}
	var wifi bytes.Buffer
	ww := pcapgo.NewWriter(&wifi)
	ww.WriteFileHeader(65535, layers.LinkTypeIEEE80211Radio)

	for _, tc := range []struct {
		name      string
		data      []byte
		wantErr   string
		wantPkt   int  // the packet number the error names (0: header)
		wantFlows bool // some flows were read before the error
	}{
		{"truncated pcapng", good[:len(good)*2/3], "truncated", -1, true},
		{"truncated pcap", pcap.Bytes()[:pcap.Len()-30], "truncated", len(c.Frames), true},
		{"garbage", []byte("this is not a capture file at all"), "not a pcap or pcapng file", 0, false},
		{"empty", nil, "too short", 0, false},
		{"wifi", wifi.Bytes(), "unsupported link type 127", 0, false},
		{"pcap header only", pcap.Bytes()[:10], "pcap header", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd := &Reader{}
			err := rd.Read("bad.cap", bytes.NewReader(tc.data))
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T), want a *FileError", err, err)
			}
			if fe.File != "bad.cap" || !strings.Contains(err.Error(), "bad.cap") || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q, want it to name bad.cap and say %q", err, tc.wantErr)
			}
			if tc.wantPkt >= 0 && fe.Packet != tc.wantPkt {
				t.Errorf("error names packet %d, want %d", fe.Packet, tc.wantPkt)
			}
			res, rerr := analyse("bad.cap", tc.data)
			if rerr == nil || res.Error == "" {
				t.Errorf("the analysis lost the error")
			}
			if got := len(res.Flows) > 0; got != tc.wantFlows {
				t.Errorf("flows read so far: %d, want some: %v", len(res.Flows), tc.wantFlows)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	good := writeNg(f, meshCapture(f))
	f.Add(good[:600])
	f.Add(good[:64])
	var pcap bytes.Buffer
	w := pcapgo.NewWriter(&pcap)
	w.WriteFileHeader(65535, layers.LinkTypeLinuxSLL)
	d := synth.SLL(0, [6]byte{}, synth.Pkt{Src: netip.MustParseAddrPort("10.0.0.2:1"), Dst: netip.MustParseAddrPort("10.0.0.3:2"), Proto: synth.TCP}.IPv4())
	w.WritePacket(gopacket.CaptureInfo{CaptureLength: len(d), Length: len(d)}, d)
	f.Add(pcap.Bytes())
	// The hostile corpus: damaged block lengths, garbage frames, huge
	// records.
	hostile, _ := filepath.Glob("../fixtures/hostile/captures/*")
	for _, p := range hostile {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := &Reader{}
		err := rd.Read("fuzz", bytes.NewReader(data))
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz") {
			t.Errorf("error does not name the file: %v", err)
		}
		res, _ := analyse("fuzz", data)
		var sb strings.Builder
		trace.WriteText(&sb, res)
	})
}
