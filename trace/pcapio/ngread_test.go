package pcapio

import (
	"bufio"
	"bytes"

	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/meshtrace/meshtrace/trace"
)

// ngRead is every packet ngReader reads, and its error (nil at a clean
// end).
func ngRead(data []byte) ([]ngPacket, []ngIntf, error) {
	r, err := newNgReader(bufio.NewReaderSize(bytes.NewReader(data), 4096))
	if err != nil {
		return nil, nil, err
	}
	var out []ngPacket
	for {
		p, err := r.next()
		if err == io.EOF {
			return out, r.ifaces, nil
		}
		if err != nil {
			return out, r.ifaces, err
		}
		p.data = bytes.Clone(p.data)
		out = append(out, p)
	}
}

// pcapgoRead is the same read by gopacket's pcapgo.
func pcapgoRead(data []byte) ([]ngPacket, []pcapgo.NgInterface, error) {
	nr, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		return nil, nil, err
	}
	var out []ngPacket
	for {
		d, ci, opts, err := nr.ReadPacketDataWithOptions()
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, nil, err
		}
		p := ngPacket{data: d, iface: ci.InterfaceIndex, ts: ci.Timestamp.UnixNano()}
		if opts.Flags != nil {
			switch opts.Flags.Direction {
			case pcapgo.NgEpbFlagDirectionInbound:
				p.dir = trace.DirIn
			case pcapgo.NgEpbFlagDirectionOutbound:
				p.dir = trace.DirOut
			}
		}
		out = append(out, p)
	}
	var ifs []pcapgo.NgInterface
	for i := 0; i < nr.NInterfaces(); i++ {
		in, _ := nr.Interface(i)
		ifs = append(ifs, in)
	}
	return out, ifs, nil
}

// sameAsPcapgo fails unless both readers read the same packets from
// data (and both fail, or neither).
func sameAsPcapgo(t *testing.T, name string, data []byte) int {
	t.Helper()
	got, gotIf, err := ngRead(data)
	want, wantIf, werr := pcapgoRead(data)
	if (err == nil) != (werr == nil) {
		t.Fatalf("%s: error %v, pcapgo's %v", name, err, werr)
	}
	if err != nil {
		return 0
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d packets, pcapgo reads %d", name, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if !bytes.Equal(g.data, w.data) || g.iface != w.iface || g.ts != w.ts || g.dir != w.dir {
			t.Fatalf("%s: packet %d: %d bytes iface %d ts %d dir %v, pcapgo: %d bytes iface %d ts %d dir %v",
				name, i+1, len(g.data), g.iface, g.ts, g.dir, len(w.data), w.iface, w.ts, w.dir)
		}
	}
	if len(gotIf) != len(wantIf) {
		t.Fatalf("%s: %d interfaces, pcapgo %d", name, len(gotIf), len(wantIf))
	}
	for i := range gotIf {
		g, w := gotIf[i], wantIf[i]
		if g.name != w.Name || g.desc != w.Description || g.link != int(w.LinkType) {
			t.Fatalf("%s: interface %d: %q %q link %d, pcapgo %q %q link %d", name, i, g.name, g.desc, g.link, w.Name, w.Description, w.LinkType)
		}
	}
	return len(got)
}

// TestNgReaderMatchesPcapgo: the in-place pcapng reader reads what
// gopacket's reader reads, from the recorded captures and from files
// with what they lack (time resolutions and offsets, simple packet
// blocks, blocks longer than the read buffer, several sections).
func TestNgReaderMatchesPcapgo(t *testing.T) {
	paths, _ := filepath.Glob(fixtureDir + "/*.pcapng")
	if len(paths) == 0 {
		t.Fatal("no recorded pcapng")
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(p) == "truncated.pcapng" {
			// pcapgo stops at the cut with an error, as this reader does
			got, _, err := ngRead(data)
			if err == nil || len(got) == 0 {
				t.Errorf("truncated.pcapng: %d packets, error %v", len(got), err)
			}
			continue
		}
		if n := sameAsPcapgo(t, filepath.Base(p), data); n == 0 {
			t.Errorf("%s: no packet read", p)
		}
	}
	// Written by pcapgo: interfaces with their own resolution and offset,
	// frames longer than the 4 KiB read buffer, a second section.
	var b bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&b, pcapgo.NgInterface{Name: "a", Description: "first", LinkType: layers.LinkTypeEthernet,
		TimestampResolution: 9, SnapLength: 65535}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddInterface(pcapgo.NgInterface{Name: "b", LinkType: layers.LinkTypeLinuxSLL2, TimestampResolution: 0x80 | 20,
		TimestampOffset: 7, SnapLength: 65535}); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	for i := range 20 {
		d := bytes.Repeat([]byte{byte(i)}, 60+i*500)
		ci := gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(d), Length: len(d) + 3, InterfaceIndex: i % 2}
		opts := pcapgo.NgPacketOptions{Comments: []string{"c"}}
		if i%3 == 0 {
			opts.Flags = &pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionOutbound}
		}
		if err := w.WritePacketWithOptions(ci, d, opts); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	written := b.Bytes()
	sameAsPcapgo(t, "written", written)
	// A simple packet block (interface 0, no time) and an unknown block
	// appended, then a second section with one interface and a packet.
	var more bytes.Buffer
	more.Write(written)
	spb := append(le32(3, 24, 5), []byte("abcde\x00\x00\x00")...)
	more.Write(append(spb, le32(24)...))
	more.Write(append(le32(0x0bad, 20, 9, 9), le32(20)...))
	w2, _ := pcapgo.NewNgWriterInterface(&more, pcapgo.NgInterface{Name: "c", LinkType: layers.LinkTypeEthernet, SnapLength: 65535}, pcapgo.DefaultNgWriterOptions)
	w2.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: 3, Length: 3}, []byte{1, 2, 3})
	w2.Flush()
	if n := sameAsPcapgo(t, "more", more.Bytes()); n != 22 {
		t.Errorf("read %d packets, want 22", n)
	}
}

func le32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
	return b
}

// FuzzNgReader: whatever the bytes, the reader never panics, and where
// pcapgo reads a file through without error, it reads the same packets.
func FuzzNgReader(f *testing.F) {
	f.Add(writeNg(f, meshCapture(f)))
	paths, _ := filepath.Glob(fixtureDir + "/*.pcapng")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && len(b) < 64<<10 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, _, err := ngRead(data)
		want, _, werr := pcapgoRead(data)
		if err != nil || werr != nil {
			return // each may stop at damage the other reads past
		}
		if len(got) != len(want) {
			t.Fatalf("%d packets, pcapgo reads %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i].data, want[i].data) || got[i].iface != want[i].iface || got[i].ts != want[i].ts {
				t.Fatalf("packet %d differs from pcapgo's", i+1)
			}
		}
	})
}
