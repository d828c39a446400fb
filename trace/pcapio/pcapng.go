package pcapio

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/meshtrace/meshtrace/trace"
)

// snapLen is the snap length written (the capture filter keeps all of a
// packet).
const snapLen = 262144

// descPrefix starts the description of every interface block trace
// writes; replay reads the node back from it.
const descPrefix = "meshtrace"

// Capture is a set of frames with their points, raw bytes (for writing)
// and link type (Ethernet for live captures).
type Capture struct {
	Points []trace.Point
	Frames []trace.Frame
	Data   [][]byte // Data[i] is Frames[i]'s bytes; nil when not kept
}

// Sort orders frames (and their bytes) by time.
func (c *Capture) Sort() {
	idx := make([]int, len(c.Frames))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return c.Frames[idx[i]].TS < c.Frames[idx[j]].TS })
	frames := make([]trace.Frame, len(c.Frames))
	for i, j := range idx {
		frames[i] = c.Frames[j]
	}
	c.Frames = frames
	if len(c.Data) == len(idx) {
		data := make([][]byte, len(idx))
		for i, j := range idx {
			data[i] = c.Data[j]
		}
		c.Data = data
	}
}

// NgWriter writes frames as pcapng as they come: one interface block per
// point, named by Point.Label ("ingress_sbox/eth1"), each packet with its
// direction in its flags and, when given, a comment. It is what --pcap
// writes (at the end, with the comments naming each frame's flow and
// hop), and what a stream to Wireshark can write frame by frame.
type NgWriter struct {
	nw *pcapgo.NgWriter
	n  int
}

// NewNgWriter writes the section and interface blocks of points.
func NewNgWriter(w io.Writer, primary string, points []trace.Point) (*NgWriter, error) {
	if len(points) == 0 {
		return nil, fmt.Errorf("pcapng: no capture points")
	}
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Application: "meshtrace", OS: "linux",
		Comment: "meshtrace trace: one interface per (node, netns, interface)",
	}}
	var nw *pcapgo.NgWriter
	for i, p := range points {
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
	return &NgWriter{nw: nw}, nil
}

// Write writes one frame's bytes (Ethernet) and returns its number in the
// file.
func (w *NgWriter) Write(f *trace.Frame, data []byte, comment string) (int, error) {
	ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, f.TS), CaptureLength: len(data), Length: len(data), InterfaceIndex: int(f.Point)}
	var po pcapgo.NgPacketOptions
	flags := pcapgo.NgEpbFlags{}
	switch f.Dir {
	case trace.DirIn:
		flags.Direction = pcapgo.NgEpbFlagDirectionInbound
	case trace.DirOut:
		flags.Direction = pcapgo.NgEpbFlagDirectionOutbound
	}
	po.Flags = &flags
	if comment != "" {
		po.Comments = []string{comment}
	}
	if err := w.nw.WritePacketWithOptions(ci, data, po); err != nil {
		return 0, fmt.Errorf("pcapng: packet %d: %w", w.n+1, err)
	}
	w.n++
	return w.n, nil
}

// Flush writes what is buffered.
func (w *NgWriter) Flush() error {
	if err := w.nw.Flush(); err != nil {
		return fmt.Errorf("pcapng: %w", err)
	}
	return nil
}

// WritePcapng writes a capture as pcapng (NgWriter): comments[i] goes
// with Frames[i] (may be nil). Frames must be in time order. It returns
// each frame's packet number in the file.
func WritePcapng(w io.Writer, primary string, c *Capture, comments []string) ([]int, error) {
	nw, err := NewNgWriter(w, primary, c.Points)
	if err != nil {
		return nil, err
	}
	nums := make([]int, len(c.Frames))
	for i := range c.Frames {
		if i >= len(c.Data) || c.Data[i] == nil {
			continue
		}
		comment := ""
		if i < len(comments) {
			comment = comments[i]
		}
		if nums[i], err = nw.Write(&c.Frames[i], c.Data[i], comment); err != nil {
			return nil, err
		}
	}
	return nums, nw.Flush()
}

// describe writes a point as "meshtrace node=node0 netns=ingress_sbox
// ifname=eth1 role=sandbox-gw".
func describe(p trace.Point) string {
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
func parseDescription(d string) (p trace.Point, ok bool) {
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

// Comments names the flow and hop of each frame of c, flow number id, in
// comments[frame.Num-1] (the pcapng comments; Num is the frame's place
// in the written file).
func Comments(comments []string, id int, c *trace.Conn, points []trace.Point, primary string) {
	flow := fmt.Sprintf("flow %d %s %s -> %s", id, trace.ProtoName(c.Proto),
		netip.AddrPortFrom(c.Client.Src.Addr(), c.Client.SPort), netip.AddrPortFrom(c.Client.Dst.Addr(), c.Client.DPort))
	for _, lp := range c.Packets {
		dir := "request"
		if lp.Reply {
			dir = "reply"
		}
		for h := range lp.Frames {
			f := &lp.Frames[h]
			if i := int(f.Num) - 1; i >= 0 && i < len(comments) {
				comments[i] = fmt.Sprintf("%s: %s %s hop %d/%d at %s %s", flow, dir, trace.FlagString(lp.Key.Proto, lp.Key.Flags),
					h+1, len(lp.Frames), points[f.Point].Label(primary), f.Dir)
			}
		}
	}
}

// maxBlock is the longest pcapng block replay accepts: a packet block
// holds at most one frame of trace's or tcpdump's snap length (256 KiB)
// and its options; Wireshark's own bound is 16 MiB too.
const maxBlock = 16 << 20

// ngBlockNames name the pcapng block types in errors.
var ngBlockNames = map[uint32]string{
	magicPcapngBE: "section header", 1: "interface description", 2: "packet", 3: "simple packet",
	4: "name resolution", 5: "interface statistics", 6: "enhanced packet", 10: "decryption secrets",
}

// ngFraming checks the block structure of a pcapng stream as pcapgo reads
// through it (pcapgo reports every damaged length as an unexpected EOF):
// each block's length is at least 12 bytes (28 for a section header), a
// multiple of 4, at most maxBlock, and repeated at the block's end. The
// first damage found is kept in err and ends the stream.
type ngFraming struct {
	r     *bufio.Reader
	order binary.ByteOrder
	// The current block: its number (from 1), type, length, offset in the
	// file and how many of its bytes are not yet passed on.
	block  int
	typ    uint32
	length uint32
	start  int64
	left   int64
	off    int64
	err    error
}

func (c *ngFraming) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.left == 0 {
		if err := c.next(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if c.left == 4 {
		if err := c.trailer(); err != nil {
			c.err = err
			return 0, err
		}
	}
	// Stop before the trailer, so it is checked before it is passed on.
	n := c.left
	if n > 4 {
		n -= 4
	}
	if int64(len(p)) > n {
		p = p[:n]
	}
	k, err := c.r.Read(p)
	c.left -= int64(k)
	c.off += int64(k)
	if err == io.EOF {
		err = c.truncated()
		c.err = err
	}
	return k, err
}

// Damaged reports the framing damage found, if any (nil at a clean end).
func (c *ngFraming) Damaged() error {
	if c.err == io.EOF {
		return nil
	}
	return c.err
}

func (c *ngFraming) what() string {
	name, ok := ngBlockNames[c.typ]
	if !ok {
		name = fmt.Sprintf("type %#x", c.typ)
	}
	return fmt.Sprintf("block %d (%s) at byte %d", c.block, name, c.start)
}

// next reads the header of the next block; io.EOF at a clean end.
func (c *ngFraming) next() error {
	hdr, err := c.r.Peek(8)
	if len(hdr) == 0 && err == io.EOF {
		return io.EOF
	}
	c.block++
	c.start = c.off
	if len(hdr) < 8 {
		return fmt.Errorf("truncated: block %d at byte %d: %d of its 8 header bytes: %w", c.block, c.start, len(hdr), io.ErrUnexpectedEOF)
	}
	c.typ = binary.LittleEndian.Uint32(hdr) // the section header's type reads the same both ways
	minLen := uint32(12)
	if c.typ == magicPcapngBE {
		minLen = 28
		head, err := c.r.Peek(12)
		if len(head) < 12 {
			return fmt.Errorf("truncated: %s: %w", c.what(), orUnexpected(err))
		}
		switch {
		case binary.BigEndian.Uint32(head[8:]) == 0x1a2b3c4d:
			c.order = binary.BigEndian
		case binary.LittleEndian.Uint32(head[8:]) == 0x1a2b3c4d:
			c.order = binary.LittleEndian
		default:
			return fmt.Errorf("%s: bad byte-order magic %#x: not a pcapng section", c.what(), binary.BigEndian.Uint32(head[8:]))
		}
	} else if c.order == nil {
		return fmt.Errorf("%s: a pcapng file starts with a section header", c.what())
	}
	c.typ = c.order.Uint32(hdr)
	c.length = c.order.Uint32(hdr[4:])
	bad := ""
	switch {
	case c.length < minLen:
		bad = fmt.Sprintf("less than the %d bytes of an empty block", minLen)
	case c.length%4 != 0:
		bad = "not a multiple of 4"
	case c.length > maxBlock:
		bad = "more than the " + sizeName(maxBlock) + " replay accepts for one block"
	}
	if bad != "" {
		return fmt.Errorf("%s: bad block length %d (%s): the file is damaged", c.what(), c.length, bad)
	}
	c.left = int64(c.length)
	return nil
}

// trailer checks the length repeated at the block's end.
func (c *ngFraming) trailer() error {
	t, err := c.r.Peek(4)
	if len(t) < 4 {
		return c.truncatedBy(err)
	}
	if n := c.order.Uint32(t); n != c.length {
		return fmt.Errorf("%s: bad block length: it starts with length %d and ends with length %d: the file is damaged", c.what(), c.length, n)
	}
	return nil
}

func (c *ngFraming) truncated() error { return c.truncatedBy(io.EOF) }

func (c *ngFraming) truncatedBy(err error) error {
	return fmt.Errorf("truncated: %s is %d bytes long, the file ends %d bytes into it: %w",
		c.what(), c.length, c.off-c.start, orUnexpected(err))
}

func orUnexpected(err error) error {
	if err == nil || err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func sizeName(n int) string { return fmt.Sprintf("%d MiB", n>>20) }
