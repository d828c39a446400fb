package pcapio

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/meshtrace/meshtrace/internal/safefile"
	"github.com/meshtrace/meshtrace/trace"
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

// Reader reads capture files as one stream of frames in time order
// (trace.Source): each file through a small reorder window, the files
// merged by time. A bad file stops at its first bad packet with a
// FileError; the frames before it stand, the other files go on, and the
// first file's error (in the order given) ends the stream.
type Reader struct {
	// KeepData keeps each frame's bytes (Item.Data; Capture.Data).
	KeepData bool
	// Preset are the points a first reading found and attributed
	// (trace.Survey): point i takes Preset[i]'s names.
	Preset []trace.Point
	// Dirs gives frames without a direction one (replay with a source).
	Dirs *trace.Directions
	// Shift is subtracted from the times of the frames of a point on
	// node (trace.ClockShift's Ahead, by node): several nodes' captures
	// put on one clock.
	Shift map[string]int64
	// Window is how many frames of a file are held to put them in time
	// order (default 256).
	Window int

	// Capture holds what Read and ReadFile read (the batch form).
	Capture Capture

	files   []*file
	points  []trace.Point
	order   []pointOrder
	pidx    map[pointKey]int32
	ignored int
	stats   []fileStat // by file, in the order given
	cur     trace.Frame
}

// pointOrder sorts points by the file (and place in it) that first
// named them, whatever the order files were merged in.
type pointOrder struct{ file, n int }

// fileStat is what one file held: frames, those kept, and why the others
// were ignored.
type fileStat struct {
	name         string
	frames, kept int
	ignored      map[string]int
	err          error
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

// Open returns a reader of the files, in the order given (none is read
// yet: Next reads them).
func Open(paths []string) *Reader {
	rd := &Reader{}
	for _, p := range paths {
		rd.AddFile(p)
	}
	return rd
}

// AddFile adds a capture file. Only a regular file is read (a FIFO or a
// device is refused at once), up to safefile.MaxCapture bytes.
//
// path may be NODE=FILE: a capture made on node NODE of a swarm, whose
// points without a node (trace --pcap of a live node names none) are
// NODE's (NodeFile).
func (rd *Reader) AddFile(path string) {
	node, path := NodeFile(path)
	defer func() { rd.files[len(rd.files)-1].node = node }()
	f, err := safefile.Open(path, safefile.MaxCapture)
	if err != nil {
		var se *safefile.Error
		if errors.As(err, &se) {
			err = se.Err // the FileError names the file
		}
		rd.addFile(path, nil, nil, &FileError{File: path, Err: err})
		return
	}
	rd.addFile(path, f, f, nil)
}

// Add adds a capture read from r; name identifies it.
func (rd *Reader) Add(name string, r io.Reader) { rd.addFile(name, r, nil, nil) }

func (rd *Reader) addFile(name string, r io.Reader, c io.Closer, err error) {
	if rd.pidx == nil {
		rd.pidx = map[pointKey]int32{}
	}
	fi := &file{rd: rd, name: name, idx: len(rd.files) + 1, closer: c, err: err}
	if r != nil {
		fi.br = bufio.NewReaderSize(r, 256<<10)
	}
	rd.files = append(rd.files, fi)
	rd.stats = append(rd.stats, fileStat{name: name, err: err})
}

// ReadFile reads one file whole into Capture (the batch form). The
// error, if any, is a *FileError.
func (rd *Reader) ReadFile(path string) error {
	rd.AddFile(path)
	return rd.drain()
}

// Read reads the capture r whole into Capture; name identifies it.
func (rd *Reader) Read(name string, r io.Reader) error {
	rd.Add(name, r)
	return rd.drain()
}

// drain reads the files added so far into Capture and returns the last
// one's error.
func (rd *Reader) drain() error {
	for {
		it, err := rd.next()
		if err != nil {
			break
		}
		rd.Capture.Frames = append(rd.Capture.Frames, *it.Frame)
		if rd.KeepData {
			rd.Capture.Data = append(rd.Capture.Data, it.Data)
		}
	}
	rd.Capture.Points = rd.points
	return rd.stats[len(rd.stats)-1].err
}

// Points implements trace.Source (the Preset ones until as many are
// read: a second reading finds the same points in the same order).
func (rd *Reader) Points() []trace.Point {
	if len(rd.points) < len(rd.Preset) {
		return rd.Preset
	}
	return rd.points
}

// PointOrder lists the points in the order files name them (by file,
// then by first frame), for the summary.
func (rd *Reader) PointOrder() []int {
	idx := make([]int, len(rd.Points()))
	for i := range idx {
		idx[i] = i
	}
	if len(rd.order) != len(idx) {
		return idx
	}
	sort.SliceStable(idx, func(a, b int) bool {
		x, y := rd.order[idx[a]], rd.order[idx[b]]
		return x.file < y.file || (x.file == y.file && x.n < y.n)
	})
	return idx
}

// Ignored implements trace.Source.
func (rd *Reader) Ignored() int { return rd.ignored }

// Next implements trace.Source: the earliest frame of all files. At the
// end it returns the first file error (in the order the files were
// given), the error of files without one frame to analyse (Nothing), or
// io.EOF.
func (rd *Reader) Next(ctx context.Context) (trace.Item, error) {
	it, err := rd.next()
	if err == io.EOF {
		if err = rd.Err(); err == nil {
			if err = rd.Nothing(); err == nil {
				err = io.EOF
			}
		}
	}
	return it, err
}

func (rd *Reader) next() (trace.Item, error) {
	var best *file
	for _, f := range rd.files {
		if !f.fill() {
			continue
		}
		if best == nil || f.buf[f.head].f.TS < best.buf[best.head].f.TS {
			best = f
		}
	}
	if best == nil {
		return trace.Item{}, io.EOF
	}
	p := best.pop()
	rd.cur = p.f
	rd.Dirs.Fix(&rd.cur)
	return trace.Item{Frame: &rd.cur, Data: p.data}, nil
}

// Err is the first file error, in the order the files were given.
func (rd *Reader) Err() error {
	for _, st := range rd.stats {
		if st.err != nil {
			return st.err
		}
	}
	return nil
}

// file is one capture being read: its format's reader and the frames
// held to be put in time order.
type file struct {
	rd     *Reader
	name   string
	idx    int
	br     *bufio.Reader
	closer io.Closer
	err    error
	done   bool
	n      int // packets read
	read   func() (pending, bool)
	points []int32   // by interface: its point (for frames without an ifindex), -1 not yet
	node   string    // the node the capture was made on (NODE=FILE), "" not said
	buf    []pending // sorted by time from head
	head   int
	seq    int
}

type pending struct {
	f    trace.Frame
	data []byte
	seq  int
}

// fill reads until the window is full or the file ends; false when
// nothing is left.
func (f *file) fill() bool {
	w := f.rd.Window
	if w <= 0 {
		w = 256
	}
	for !f.done && len(f.buf)-f.head < w {
		p, ok := f.step()
		if !ok {
			break
		}
		f.insert(p)
	}
	return len(f.buf) > f.head
}

// insert places p by time (stable): frames of a file mostly come in
// order, so the scan from the end is short.
func (f *file) insert(p pending) {
	if f.head > 0 && f.head >= len(f.buf)/2 {
		n := copy(f.buf, f.buf[f.head:])
		clear(f.buf[n:])
		f.buf, f.head = f.buf[:n], 0
	}
	i := len(f.buf)
	f.buf = append(f.buf, p)
	for i > f.head && f.buf[i-1].f.TS > p.f.TS {
		f.buf[i] = f.buf[i-1]
		i--
	}
	f.buf[i] = p
}

func (f *file) pop() pending {
	p := f.buf[f.head]
	f.buf[f.head] = pending{}
	f.head++
	return p
}

// step reads and decodes the file's next frame to keep.
func (f *file) step() (pending, bool) {
	if f.read == nil && !f.start() {
		return pending{}, false
	}
	for {
		p, ok := f.read()
		if !ok {
			return pending{}, false
		}
		if p.f.Pkt.Proto != 0 {
			p.seq = f.seq
			f.seq++
			return p, true
		}
	}
}

func (f *file) fail(err error) {
	f.done = true
	if f.err == nil {
		f.err = err
		f.rd.stats[f.idx-1].err = err
	}
	if f.closer != nil {
		f.closer.Close()
	}
}

func (f *file) end() {
	f.done = true
	if f.closer != nil {
		f.closer.Close()
	}
}

// start reads the file's header and picks its format.
func (f *file) start() bool {
	if f.err != nil || f.br == nil {
		f.done = true
		return false
	}
	head, err := f.br.Peek(4)
	if err != nil {
		f.fail(&FileError{File: f.name, Err: fmt.Errorf("too short for a capture file: %w", err)})
		return false
	}
	le, be := binary.LittleEndian.Uint32(head), binary.BigEndian.Uint32(head)
	switch {
	case le == magicPcapngBE:
		return f.startPcapng()
	case le == magicPcapUS || le == magicPcapNS || be == magicPcapUS || be == magicPcapNS:
		return f.startPcap()
	}
	f.fail(&FileError{File: f.name, Err: fmt.Errorf("not a pcap or pcapng file (starts with %#08x)", be)})
	return false
}

func (f *file) startPcap() bool {
	pr, err := pcapgo.NewReader(f.br)
	if err != nil {
		f.fail(&FileError{File: f.name, Err: fmt.Errorf("pcap header: %w", readErr(err))})
		return false
	}
	link := int(pr.LinkType())
	if !trace.LinkSupported(link) {
		f.fail(&FileError{File: f.name, Err: unsupported(link)})
		return false
	}
	f.read = func() (pending, bool) {
		data, ci, err := pr.ZeroCopyReadPacketData()
		f.n++
		if err == io.EOF {
			f.end()
			return pending{}, false
		}
		if err != nil {
			f.fail(&FileError{File: f.name, Packet: f.n, Err: readErr(err)})
			return pending{}, false
		}
		return f.rd.add(f, 0, link, data, ci.Timestamp.UnixNano(), trace.DirUnknown), true
	}
	return true
}

func (f *file) startPcapng() bool {
	nr, err := newNgReader(f.br)
	if err != nil {
		f.fail(&FileError{File: f.name, Err: fmt.Errorf("pcapng header: %w", err)})
		return false
	}
	var ifaces []ngIface
	f.read = func() (pending, bool) {
		pk, err := nr.next()
		f.n++
		if err == io.EOF {
			f.end()
			return pending{}, false
		}
		if err != nil { // framing damage says what it is (truncated too)
			f.fail(&FileError{File: f.name, Packet: f.n, Err: err})
			return pending{}, false
		}
		// What an interface block says is read once per interface.
		ii := pk.iface
		for ii >= len(ifaces) {
			ifaces = append(ifaces, ngIface{link: -2})
		}
		in := &ifaces[ii]
		if in.link == -2 {
			intf := &nr.ifaces[ii]
			in.link = intf.link
			key := pointKey{f.idx, ii + 1, 0}
			if _, ok := f.rd.pidx[key]; !ok {
				p, ours := parseDescription(intf.desc)
				if !ours {
					node, netns, ifname, ok := trace.ParseLabel(intf.name)
					p = trace.Point{Node: node, Netns: netns, Ifname: ifname}
					if !ok {
						p = trace.Point{Ifname: intf.name, File: filepath.Base(f.name)}
					}
				}
				if p.Node == "" && p.File == "" {
					p.Node = f.node
				}
				f.rd.pidx[key] = f.rd.newPoint(p, f)
			}
		}
		if !trace.LinkSupported(in.link) {
			f.fail(&FileError{File: f.name, Packet: f.n, Err: unsupported(in.link)})
			return pending{}, false
		}
		return f.rd.add(f, ii+1, in.link, pk.data, pk.ts, pk.dir), true
	}
	return true
}

// ngIface is what a pcapng interface block says, read at its first
// packet (link -2: not yet).
type ngIface struct{ link int }

func (rd *Reader) newPoint(p trace.Point, f *file) int32 {
	// Our own points are shared across files (two captures of one run).
	if p.File == "" {
		for i, q := range rd.points {
			if q.File == "" && q.Node == p.Node && q.Netns == p.Netns && q.Ifname == p.Ifname {
				return int32(i)
			}
		}
	}
	if i := len(rd.points); i < len(rd.Preset) {
		p = rd.Preset[i]
	}
	rd.points = append(rd.points, p)
	rd.order = append(rd.order, pointOrder{f.idx, f.n})
	return int32(len(rd.points) - 1)
}

// add decodes one frame and files it under its point: the interface
// block's, or for a plain pcap the file's (split per interface index for
// Linux cooked v2 captures of `-i any`). A frame ignored has no
// protocol.
func (rd *Reader) add(fi *file, iface, link int, data []byte, ts int64, dir trace.Dir) pending {
	var p pending
	f := &p.f
	st := &rd.stats[fi.idx-1]
	st.frames++
	if err := trace.Decode(link, data, f); err != nil {
		rd.ignored++
		if st.ignored == nil {
			st.ignored = map[string]int{}
		}
		st.ignored[ignoredWhy(err)]++
		f.Pkt.Proto = 0
		return p
	}
	st.kept++
	if dir != trace.DirUnknown {
		f.Dir = dir
	}
	if f.Ifindex == 0 && iface < len(fi.points) && fi.points[iface] >= 0 {
		f.Point, f.Num, f.TS = fi.points[iface], int32(fi.n), rd.shifted(fi.points[iface], ts)
		if rd.KeepData {
			p.data = append([]byte(nil), data...)
		}
		return p
	}
	key := pointKey{fi.idx, iface, int(f.Ifindex)}
	pt, ok := rd.pidx[key]
	if !ok {
		var np trace.Point
		if base, ok := rd.pidx[pointKey{fi.idx, iface, 0}]; ok {
			np = rd.points[base]
		} else {
			np = trace.Point{File: filepath.Base(fi.name)}
			if link == trace.LinkSLL || link == trace.LinkSLL2 {
				np.Ifname = "any"
			}
		}
		if f.Ifindex != 0 {
			np.Ifname = fmt.Sprintf("if%d", f.Ifindex)
			if np.Netns == "" {
				np.File = filepath.Base(fi.name)
			}
		}
		pt = rd.newPoint(np, fi)
		rd.pidx[key] = pt
	}
	if f.Ifindex == 0 {
		for iface >= len(fi.points) {
			fi.points = append(fi.points, -1)
		}
		fi.points[iface] = pt
	}
	f.Point, f.Num, f.TS = pt, int32(fi.n), rd.shifted(pt, ts)
	if rd.KeepData {
		p.data = append([]byte(nil), data...)
	}
	return p
}

// shifted is ts of a frame at point pt on the reference clock (Shift).
func (rd *Reader) shifted(pt int32, ts int64) int64 {
	if rd.Shift == nil || int(pt) >= len(rd.points) {
		return ts
	}
	node := rd.points[pt].Node
	if int(pt) < len(rd.Preset) && rd.Preset[pt].Node != "" {
		node = rd.Preset[pt].Node
	}
	return ts - rd.Shift[node]
}

// Survey reads the files once through (trace.Survey: their points, the
// addresses and MACs their frames carry, their port), for a replay
// against a source; the second reading is a Reader with the survey's
// attributed points as Preset.
func Survey(paths []string) *trace.Survey {
	rd := Open(paths)
	s := &trace.Survey{}
	for {
		it, err := rd.next()
		if err != nil {
			break
		}
		s.Add(rd.points[it.Frame.Point], it.Frame)
	}
	s.Points = rd.points
	return s
}

// ignoredWhy names the reason a frame was ignored.
func ignoredWhy(err error) string {
	switch {
	case errors.Is(err, trace.ErrNotIPv4):
		return "not IPv4 (ARP, IPv6, other)"
	case errors.Is(err, trace.ErrNotTCPUDP):
		return "not TCP or UDP"
	case errors.Is(err, trace.ErrFragment):
		return "IPv4 fragments after the first"
	case errors.Is(err, trace.ErrShort):
		return "too short for their headers"
	}
	return err.Error()
}

// Nothing is the error of files without one frame replay can analyse
// (nil when there is one): each file's frames, and why they were ignored.
func (rd *Reader) Nothing() error {
	for _, st := range rd.stats {
		if st.kept > 0 {
			return nil
		}
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
		trace.ErrUnsupported, link, layers.LinkType(link))
}

func readErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated: %w", err)
	}
	return err
}

// prefetch reads a Reader in a goroutine of its own, a batch of frames
// ahead, so that reading and decoding the files overlaps with what the
// stream does with them (a second core). It is a trace.Source.
type prefetch struct {
	rd     *Reader
	ch     chan batch
	stop   chan struct{}
	free   chan []trace.Frame // batches' frames handed back for reuse
	cur    batch
	i      int
	points []trace.Point
	ign    int
	err    error
}

// batch is a run of frames with the reader's points and count of ignored
// frames as they were after its last frame.
type batch struct {
	frames  []trace.Frame
	data    [][]byte
	points  []trace.Point
	ignored int
	err     error // the reader's end (io.EOF or its error), after frames
}

const batchSize = 512

// Prefetch returns rd read ahead in a goroutine (rd must not be used
// otherwise any more). Stopping early is allowed: Close ends the
// goroutine.
func Prefetch(rd *Reader) trace.Source {
	p := &prefetch{rd: rd, ch: make(chan batch, 8), stop: make(chan struct{}), free: make(chan []trace.Frame, 10), points: rd.Points()}
	go func() {
		defer close(p.ch)
		for {
			var b batch
			select {
			case b.frames = <-p.free:
			default:
				b.frames = make([]trace.Frame, 0, batchSize)
			}
			for len(b.frames) < batchSize {
				it, err := rd.Next(context.Background())
				if err != nil {
					b.err = err
					break
				}
				b.frames = append(b.frames, *it.Frame)
				if rd.KeepData {
					b.data = append(b.data, it.Data)
				}
			}
			b.points, b.ignored = rd.Points(), rd.Ignored()
			select {
			case p.ch <- b:
			case <-p.stop:
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	return p
}

// Next implements trace.Source.
func (p *prefetch) Next(ctx context.Context) (trace.Item, error) {
	for p.i >= len(p.cur.frames) {
		if p.cur.err != nil {
			return trace.Item{}, p.cur.err
		}
		b, ok := <-p.ch
		if !ok {
			return trace.Item{}, io.EOF
		}
		if p.cur.frames != nil {
			// its frames were copied out: the reader may fill it again
			select {
			case p.free <- p.cur.frames[:0]:
			default:
			}
		}
		p.cur, p.i = b, 0
		p.points, p.ign = b.points, b.ignored
	}
	// The batch is handed back to the reader at the next call only: the
	// frame is valid until then, as Item says, without a copy.
	it := trace.Item{Frame: &p.cur.frames[p.i]}
	if p.i < len(p.cur.data) {
		it.Data = p.cur.data[p.i]
	}
	p.i++
	return it, nil
}

// Points implements trace.Source: as the reader had them after the
// frames handed out so far (a frame's point is always among them).
func (p *prefetch) Points() []trace.Point { return p.points }

// Ignored implements trace.Source.
func (p *prefetch) Ignored() int { return p.ign }

// PointOrder is the reader's, once it has ended (the points in index
// order before).
func (p *prefetch) PointOrder() []int {
	if p.cur.err == nil {
		idx := make([]int, len(p.points))
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	return p.rd.PointOrder()
}

// Close ends the read-ahead.
func (p *prefetch) Close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
}

// NodeFile splits a replay argument NODE=FILE (a capture made on node
// NODE) into its node and file; an argument without "=" before its first
// "/", or naming a file that exists, is a file of no node.
func NodeFile(arg string) (node, path string) {
	i := strings.IndexByte(arg, '=')
	if i <= 0 || strings.ContainsRune(arg[:i], '/') {
		return "", arg
	}
	if _, err := os.Lstat(arg); err == nil {
		return "", arg
	}
	return arg[:i], arg[i+1:]
}
