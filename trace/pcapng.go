package trace

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// descPrefix starts the description of every interface block trace
// writes; replay reads the node back from it.
const descPrefix = "meshtrace"

// Capture is a set of frames with their points, raw bytes (for writing)
// and link type (Ethernet for live captures).
type Capture struct {
	Points []Point
	Frames []Frame
	Data   [][]byte // Data[i] is Frames[i]'s bytes; nil when not kept
}

// WritePcapng writes the frames as pcapng: one interface block per point,
// named by Point.Label ("ingress_sbox/eth1"), the direction in each
// packet's flags and a comment naming its flow and hop. comments[i] goes
// with Frames[i] (may be nil). Frames must be in time order. It returns
// each frame's packet number in the file.
func WritePcapng(w io.Writer, primary string, c *Capture, comments []string) ([]int, error) {
	if len(c.Points) == 0 {
		return nil, fmt.Errorf("pcapng: no capture points")
	}
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Application: "meshtrace", OS: "linux",
		Comment: "meshtrace trace: one interface per (node, netns, interface)",
	}}
	var nw *pcapgo.NgWriter
	for i, p := range c.Points {
		intf := pcapgo.NgInterface{
			Name:                p.Label(primary),
			Description:         describe(p),
			LinkType:            layers.LinkTypeEthernet,
			SnapLength:          snapLen,
			TimestampResolution: 9,
		}
		if i == 0 {
			var err error
			if nw, err = pcapgo.NewNgWriterInterface(w, intf, opts); err != nil {
				return nil, fmt.Errorf("pcapng: %w", err)
			}
			continue
		}
		if _, err := nw.AddInterface(intf); err != nil {
			return nil, fmt.Errorf("pcapng: interface %s: %w", intf.Name, err)
		}
	}
	nums := make([]int, len(c.Frames))
	n := 0
	for i := range c.Frames {
		f := &c.Frames[i]
		if i >= len(c.Data) || c.Data[i] == nil {
			continue
		}
		data := c.Data[i]
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, f.TS), CaptureLength: len(data), Length: len(data), InterfaceIndex: int(f.Point)}
		var po pcapgo.NgPacketOptions
		flags := pcapgo.NgEpbFlags{}
		switch f.Dir {
		case DirIn:
			flags.Direction = pcapgo.NgEpbFlagDirectionInbound
		case DirOut:
			flags.Direction = pcapgo.NgEpbFlagDirectionOutbound
		}
		po.Flags = &flags
		if i < len(comments) && comments[i] != "" {
			po.Comments = []string{comments[i]}
		}
		if err := nw.WritePacketWithOptions(ci, data, po); err != nil {
			return nil, fmt.Errorf("pcapng: packet %d: %w", n+1, err)
		}
		n++
		nums[i] = n
	}
	if err := nw.Flush(); err != nil {
		return nil, fmt.Errorf("pcapng: %w", err)
	}
	return nums, nil
}

// describe writes a point as "meshtrace node=node0 netns=ingress_sbox
// ifname=eth1 role=sandbox-gw".
func describe(p Point) string {
	s := descPrefix
	for _, kv := range [][2]string{{"node", p.Node}, {"netns", p.Netns}, {"ifname", p.Ifname}, {"role", p.Role}} {
		if kv[1] != "" {
			s += " " + kv[0] + "=" + kv[1]
		}
	}
	return s
}

// parseDescription reads describe's output back (ok false for a
// description trace did not write).
func parseDescription(d string) (p Point, ok bool) {
	f := strings.Fields(d)
	if len(f) == 0 || f[0] != descPrefix {
		return p, false
	}
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "node":
			p.Node = v
		case "netns":
			p.Netns = v
		case "ifname":
			p.Ifname = v
		case "role":
			p.Role = v
		}
	}
	return p, p.Netns != "" && p.Ifname != ""
}

// FrameComments names each frame's flow and hop, for the pcapng comments.
func FrameComments(c *Capture, conns []*Conn, primary string) []string {
	out := make([]string, len(c.Frames))
	for ci, cn := range conns {
		flow := fmt.Sprintf("flow %d %s %s -> %s", ci+1, ProtoName(cn.Proto),
			endpoint(cn.Client.Src, cn.Client.SPort), endpoint(cn.Client.Dst, cn.Client.DPort))
		for _, lp := range cn.Packets {
			dir := "request"
			if lp.Reply {
				dir = "reply"
			}
			for h, fi := range lp.Frames {
				f := &c.Frames[fi]
				out[fi] = fmt.Sprintf("%s: %s %s hop %d/%d at %s %s", flow, dir, FlagString(lp.Key.Proto, lp.Key.Flags),
					h+1, len(lp.Frames), c.Points[f.Point].Label(primary), f.Dir)
			}
		}
	}
	return out
}
