// Package benchtrace measures meshtrace replay against tshark on the
// same capture, in the same run (see README.md).
package benchtrace

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/meshtrace/meshtrace/trace/synth"
)

// WriteMeshCapture writes at least n frames of mesh-shaped traffic as
// pcapng, the way `meshtrace trace --pcap` writes it: one interface per
// (node, netns, interface) of a two-node mesh, HTTP connections from the
// client to node0's published port, every other one served across VXLAN
// by node1, each packet seen at every hop with the addresses NAT gives
// it there. It returns the frames and connections written.
func WriteMeshCapture(w io.Writer, n int) (frames, conns int, err error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "meshtrace bench", OS: "linux"}}
	var nw *pcapgo.NgWriter
	for i, label := range synth.MeshPoints {
		intf := pcapgo.NgInterface{Name: label, LinkType: layers.LinkTypeEthernet, TimestampResolution: 9}
		if i == 0 {
			if nw, err = pcapgo.NewNgWriterInterface(bw, intf, opts); err != nil {
				return 0, 0, err
			}
			continue
		}
		if _, err = nw.AddInterface(intf); err != nil {
			return 0, 0, err
		}
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	in, out := pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionInbound}, pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionOutbound}
	for frames < n {
		req, resp := synth.HTTP(fmt.Sprintf("web.%d", conns%2+1))
		c := synth.Conn{
			ClientPort: uint16(32768 + conns%28000), Published: 8080, Remote: conns%2 == 1,
			Start: start, ISN: uint32(conns)*7919 + 1, SISN: uint32(conns)*104729 + 7,
			ID: uint16(conns * 13), SID: uint16(conns * 31), Request: req, Response: resp,
		}
		var last int64
		c.Emit(func(s synth.Sighting) {
			if err != nil {
				return
			}
			flags := in
			if s.Out {
				flags = out
			}
			ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, s.TS), CaptureLength: len(s.Frame), Length: len(s.Frame), InterfaceIndex: s.Point}
			err = nw.WritePacketWithOptions(ci, s.Frame, pcapgo.NgPacketOptions{Flags: &flags})
			frames++
			last = s.TS
		})
		if err != nil {
			return frames, conns, err
		}
		conns++
		start = last + 50_000
	}
	if err := nw.Flush(); err != nil {
		return frames, conns, err
	}
	return frames, conns, bw.Flush()
}
