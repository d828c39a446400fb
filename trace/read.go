package trace

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/meshtrace/meshtrace/internal/safefile"
)

// FileError is a capture file that could not be read (wholly or from
// some packet on). Packet is the 1-based number of the packet that
// failed, 0 for the file header.
type FileError struct {
	File   string
	Packet int
	Err    error
}

func (e *FileError) Error() string {
	if e.Packet > 0 {
		return fmt.Sprintf("%s: packet %d: %v", e.File, e.Packet, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// Read collects frames from capture files. Frames of every file go into
// one Capture; a bad file stops at its first bad packet with a FileError
// and the frames read before it are kept.
type Reader struct {
	Capture Capture
	Ignored int
	// KeepData keeps each frame's bytes (to write them out again).
	KeepData bool
	points   map[pointKey]int32
	files    int
	stats    []fileStat // by file, in reading order
}

// fileStat is what one file held: frames, those kept, and why the others
// were ignored.
type fileStat struct {
	name         string
	frames, kept int
	ignored      map[string]int
}

type pointKey struct {
	file, iface, ifindex int
}

// magic numbers of the formats.
const (
	magicPcapUS   = 0xa1b2c3d4
	magicPcapNS   = 0xa1b23c4d
	magicPcapngBE = 0x0a0d0d0a
)

// ReadFile adds one file's frames. The error, if any, is a *FileError.
// Only a regular file is read (a FIFO or a device is refused at once), up
// to safefile.MaxCapture bytes.
func (rd *Reader) ReadFile(path string) error {
	f, err := safefile.Open(path, safefile.MaxCapture)
	if err != nil {
		var se *safefile.Error
		if errors.As(err, &se) {
			err = se.Err // the FileError names the file
		}
		return &FileError{File: path, Err: err}
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && cap(rd.Capture.Frames) == len(rd.Capture.Frames) {
		// Frames are about 100 bytes in a file: size the slice once, up
		// to a million frames (the size of a file is no promise).
		need := len(rd.Capture.Frames) + int(min(st.Size()/96, 1<<20))
		rd.Capture.Frames = append(make([]Frame, 0, need), rd.Capture.Frames...)
	}
	return rd.Read(path, f)
}

// Read adds the frames of one capture read from r; name identifies it.
func (rd *Reader) Read(name string, r io.Reader) error {
	if rd.points == nil {
		rd.points = map[pointKey]int32{}
	}
	br := bufio.NewReaderSize(r, 256<<10)
	head, err := br.Peek(4)
	if err != nil {
		return &FileError{File: name, Err: fmt.Errorf("too short for a capture file: %w", err)}
	}
	rd.files++
	fileIdx := rd.files
	rd.stats = append(rd.stats, fileStat{name: name})
	le, be := binary.LittleEndian.Uint32(head), binary.BigEndian.Uint32(head)
	switch {
	case le == magicPcapngBE:
		return rd.readPcapng(name, fileIdx, br)
	case le == magicPcapUS || le == magicPcapNS || be == magicPcapUS || be == magicPcapNS:
		return rd.readPcap(name, fileIdx, br)
	}
	return &FileError{File: name, Err: fmt.Errorf("not a pcap or pcapng file (starts with %#08x)", be)}
}

func (rd *Reader) readPcap(name string, fileIdx int, r *bufio.Reader) error {
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		return &FileError{File: name, Err: fmt.Errorf("pcap header: %w", readErr(err))}
	}
	link := int(pr.LinkType())
	if !LinkSupported(link) {
		return &FileError{File: name, Err: unsupported(link)}
	}
	for n := 1; ; n++ {
		data, ci, err := pr.ZeroCopyReadPacketData()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &FileError{File: name, Packet: n, Err: readErr(err)}
		}
		rd.add(name, fileIdx, 0, link, n, data, ci, DirUnknown)
	}
}

func (rd *Reader) readPcapng(name string, fileIdx int, r *bufio.Reader) error {
	// pcapgo reads every damaged block length as an unexpected EOF: the
	// framing check between it and the file names the real damage.
	frame := &ngFraming{r: r}
	nr, err := pcapgo.NewNgReader(frame, pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		if d := frame.Damaged(); d != nil {
			err = d
		}
		return &FileError{File: name, Err: fmt.Errorf("pcapng header: %w", readErr(err))}
	}
	for n := 1; ; n++ {
		data, ci, opts, err := nr.ZeroCopyReadPacketDataWithOptions()
		if err == io.EOF {
			return nil
		}
		if d := frame.Damaged(); err != nil && d != nil {
			return &FileError{File: name, Packet: n, Err: d}
		}
		if err != nil {
			return &FileError{File: name, Packet: n, Err: readErr(err)}
		}
		link := -1
		if len(ci.AncillaryData) > 0 {
			if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
				link = int(lt)
			}
		}
		if !LinkSupported(link) {
			return &FileError{File: name, Packet: n, Err: unsupported(link)}
		}
		dir := DirUnknown
		if opts.Flags != nil {
			switch opts.Flags.Direction {
			case pcapgo.NgEpbFlagDirectionInbound:
				dir = DirIn
			case pcapgo.NgEpbFlagDirectionOutbound:
				dir = DirOut
			}
		}
		intf, err := nr.Interface(ci.InterfaceIndex)
		if err != nil {
			return &FileError{File: name, Packet: n, Err: err}
		}
		rd.addNg(name, fileIdx, ci.InterfaceIndex, intf, link, n, data, ci, dir)
	}
}

func (rd *Reader) addNg(name string, fileIdx, iface int, intf pcapgo.NgInterface, link, n int, data []byte, ci gopacket.CaptureInfo, dir Dir) {
	key := pointKey{fileIdx, iface + 1, 0}
	if _, ok := rd.points[key]; !ok {
		p, ours := parseDescription(intf.Description)
		if !ours {
			node, netns, ifname, ok := ParseLabel(intf.Name)
			p = Point{Node: node, Netns: netns, Ifname: ifname}
			if !ok {
				p = Point{Ifname: intf.Name, File: filepath.Base(name)}
			}
		}
		rd.points[key] = rd.newPoint(p)
	}
	rd.add(name, fileIdx, iface+1, link, n, data, ci, dir)
}

func (rd *Reader) newPoint(p Point) int32 {
	// Our own points are shared across files (two captures of one run).
	if p.File == "" {
		for i, q := range rd.Capture.Points {
			if q.File == "" && q.Node == p.Node && q.Netns == p.Netns && q.Ifname == p.Ifname {
				return int32(i)
			}
		}
	}
	rd.Capture.Points = append(rd.Capture.Points, p)
	return int32(len(rd.Capture.Points) - 1)
}

// add decodes one frame and files it under its point: the interface
// block's, or for a plain pcap the file's (split per interface index for
// Linux cooked v2 captures of `-i any`).
func (rd *Reader) add(name string, fileIdx, iface, link, n int, data []byte, ci gopacket.CaptureInfo, dir Dir) {
	var f Frame
	st := &rd.stats[fileIdx-1]
	st.frames++
	if err := Decode(link, data, &f); err != nil {
		rd.Ignored++
		if st.ignored == nil {
			st.ignored = map[string]int{}
		}
		st.ignored[ignoredWhy(err)]++
		return
	}
	st.kept++
	if dir != DirUnknown {
		f.Dir = dir
	}
	key := pointKey{fileIdx, iface, int(f.Ifindex)}
	pt, ok := rd.points[key]
	if !ok {
		var p Point
		if base, ok := rd.points[pointKey{fileIdx, iface, 0}]; ok {
			p = rd.Capture.Points[base]
		} else {
			p = Point{File: filepath.Base(name)}
			if link == LinkSLL || link == LinkSLL2 {
				p.Ifname = "any"
			}
		}
		if f.Ifindex != 0 {
			p.Ifname = fmt.Sprintf("if%d", f.Ifindex)
			if p.Netns == "" {
				p.File = filepath.Base(name)
			}
		}
		pt = rd.newPoint(p)
		rd.points[key] = pt
	}
	f.Point, f.Num, f.TS = pt, int32(n), ci.Timestamp.UnixNano()
	rd.Capture.Frames = append(rd.Capture.Frames, f)
	if rd.KeepData {
		rd.Capture.Data = append(rd.Capture.Data, append([]byte(nil), data...))
	}
}

// ignoredWhy names the reason a frame was ignored.
func ignoredWhy(err error) string {
	switch {
	case errors.Is(err, ErrNotIPv4):
		return "not IPv4 (ARP, IPv6, other)"
	case errors.Is(err, ErrNotTCPUDP):
		return "not TCP or UDP"
	case errors.Is(err, ErrFragment):
		return "IPv4 fragments after the first"
	case errors.Is(err, ErrShort):
		return "too short for their headers"
	}
	return err.Error()
}

// Nothing is the error of files without one frame replay can analyse
// (nil when there is one): each file's frames, and why they were ignored.
func (rd *Reader) Nothing() error {
	if len(rd.Capture.Frames) > 0 {
		return nil
	}
	if len(rd.stats) == 0 {
		return errors.New("nothing to analyse: no capture file was read")
	}
	var parts []string
	for _, st := range rd.stats {
		if st.frames == 0 {
			parts = append(parts, st.name+": no frame")
			continue
		}
		why := make([]string, 0, len(st.ignored))
		for w, n := range st.ignored {
			why = append(why, fmt.Sprintf("%d %s", n, w))
		}
		sort.Strings(why)
		parts = append(parts, fmt.Sprintf("%s: %d frames, all ignored: %s", st.name, st.frames, strings.Join(why, ", ")))
	}
	return fmt.Errorf("nothing to analyse (replay follows IPv4 TCP and UDP packets): %s", strings.Join(parts, "; "))
}

func unsupported(link int) error {
	return fmt.Errorf("%w %d (%s): replay reads Ethernet, Linux cooked v1/v2 (tcpdump -i any), raw IPv4 and BSD loopback",
		ErrUnsupported, link, layers.LinkType(link))
}

func readErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated: %w", err)
	}
	return err
}

// GuessPort names the traffic of the files: the destination of the first
// TCP SYN, else the most frequent UDP destination port below 32768.
func (rd *Reader) GuessPort() (proto string, port int) {
	first := int64(-1)
	udp := map[uint16]int{}
	for i := range rd.Capture.Frames {
		f := &rd.Capture.Frames[i]
		p := &f.Pkt
		if p.Proto == ProtoTCP && p.Flags&(FlagSYN|FlagACK) == FlagSYN && (first < 0 || f.TS < first) {
			first, port, proto = f.TS, int(p.DPort), "tcp"
		}
		if p.Proto == ProtoUDP && p.DPort < 32768 {
			udp[p.DPort]++
		}
	}
	if port != 0 {
		return proto, port
	}
	best := 0
	for p, n := range udp {
		if n > best || (n == best && int(p) < port) {
			best, port, proto = n, int(p), "udp"
		}
	}
	return proto, port
}
