package benchtrace

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/meshtrace/meshtrace/bench/proc"
	"github.com/meshtrace/meshtrace/bench/report"
	"github.com/meshtrace/meshtrace/trace/synth"
)

// Targets of issue 15.
const (
	TargetReplayRatio      = 15.0
	TargetReplayFloorRatio = 2.0
	TargetManySeconds      = 3.0
	TargetManyRSSMB        = 300.0
)

// Sizes of the replay measures.
const (
	MeshFrames = 1_000_000
	ManyFrames = 1_000_000
	ManyFlows  = 500_000
)

// WriteManyFlows writes, as classic pcap (what `tcpdump -w` writes on one
// interface), flows UDP request/reply exchanges seen at a node's uplink:
// DNS-sized queries to the published port 5353 from flows different
// clients (one address each), each answered 400 µs later, one query every
// 2 µs, so about 200 exchanges are open at any time and the rest are
// finished: the shape of a busy published UDP service. 2 frames a flow.
func WriteManyFlows(w io.Writer, flows int) (frames int, err error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	pw := pcapgo.NewWriterNanos(bw)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return 0, err
	}
	node := netip.AddrPortFrom(synth.Node0IP, 5353)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	query := bytes.Repeat([]byte{'q'}, 40)
	answer := bytes.Repeat([]byte{'a'}, 120)
	type pending struct {
		at     int64
		client netip.AddrPort
		id     uint16
	}
	var open []pending // replies due, in time order
	write := func(ts int64, src, dst netip.AddrPort, id uint16, payload []byte) error {
		ip := synth.Pkt{Src: src, Dst: dst, Proto: synth.UDP, ID: id, Payload: payload}.IPv4()
		frame := synth.Ether(synth.MAC(src.Addr()), synth.MAC(dst.Addr()), ip)
		frames++
		return pw.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(0, ts), CaptureLength: len(frame), Length: len(frame)}, frame)
	}
	for i := 0; i < flows || len(open) > 0; i++ {
		ts := start + int64(i)*2000
		for len(open) > 0 && (open[0].at <= ts || i >= flows) {
			p := open[0]
			open = open[1:]
			if err := write(p.at, node, p.client, p.id+1, answer); err != nil {
				return frames, err
			}
		}
		if i >= flows {
			continue
		}
		// clients 10.128.0.0/9, one address per flow, ephemeral ports
		a := uint32(10)<<24 | 1<<23 | uint32(i)
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), uint16(32768+i%28000))
		id := uint16(i * 7)
		if err := write(ts, client, node, id, query); err != nil {
			return frames, err
		}
		open = append(open, pending{at: ts + 400_000, client: client, id: id})
	}
	return frames, bw.Flush()
}

// File is a written capture.
type File struct {
	Path          string
	Frames, Flows int
	Size          int64
}

// WriteMeshFile writes WriteMeshCapture's n frames to dir.
func WriteMeshFile(dir string, n int) (File, error) {
	f := File{Path: filepath.Join(dir, "mesh-1m.pcapng")}
	return f, writeFile(&f, func(w io.Writer) (err error) {
		f.Frames, f.Flows, err = WriteMeshCapture(w, n)
		return err
	})
}

// WriteManyFlowsFile writes WriteManyFlows' flows to dir.
func WriteManyFlowsFile(dir string, flows int) (File, error) {
	f := File{Path: filepath.Join(dir, "udp-500k-flows.pcap"), Flows: flows}
	return f, writeFile(&f, func(w io.Writer) (err error) {
		f.Frames, err = WriteManyFlows(w, flows)
		return err
	})
}

func writeFile(f *File, write func(io.Writer) error) error {
	out, err := os.Create(f.Path)
	if err != nil {
		return err
	}
	err = write(out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	st, err := os.Stat(f.Path)
	if err == nil {
		f.Size = st.Size()
	}
	return err
}

// FloorRead is the floor of reading a capture: the file read sequentially
// through a 1 MiB buffer, every record's header walked and its captured
// bytes handed over (here: summed into a checksum), nothing decoded. It
// reads classic pcap and pcapng (the block walk) and returns the
// records.
func FloorRead(path string) (records int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	head, err := r.Peek(4)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	var sum byte
	touch := func(b []byte) {
		if len(b) > 0 {
			sum ^= b[len(b)-1]
		}
	}
	buf := make([]byte, 256<<10)
	if binary.LittleEndian.Uint32(head) == 0x0a0d0d0a {
		// pcapng: type, total length, body, total length. Little endian
		// (what gopacket and trace --pcap write on this machine).
		var bh [8]byte
		for {
			if _, err := io.ReadFull(r, bh[:]); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return records, fmt.Errorf("%s: %w", path, err)
			}
			typ, l := binary.LittleEndian.Uint32(bh[:]), int(binary.LittleEndian.Uint32(bh[4:]))
			if l < 12 || l-8 > len(buf) {
				return records, fmt.Errorf("%s: block length %d", path, l)
			}
			body := buf[:l-8]
			if _, err := io.ReadFull(r, body); err != nil {
				return records, fmt.Errorf("%s: %w", path, err)
			}
			if typ == 6 { // enhanced packet block
				capLen := int(binary.LittleEndian.Uint32(body[12:]))
				touch(body[20 : 20+capLen])
				records++
			}
		}
		_ = sum
		return records, nil
	}
	if _, err := r.Discard(24); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	var rh [16]byte
	for {
		if _, err := io.ReadFull(r, rh[:]); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return records, fmt.Errorf("%s: %w", path, err)
		}
		capLen := int(binary.LittleEndian.Uint32(rh[8:]))
		if capLen > len(buf) {
			return records, fmt.Errorf("%s: record of %d bytes", path, capLen)
		}
		if _, err := io.ReadFull(r, buf[:capLen]); err != nil {
			return records, fmt.Errorf("%s: %w", path, err)
		}
		touch(buf[:capLen])
		records++
	}
	_ = sum
	return records, nil
}

// PcapgoRead reads every record with gopacket's pcapgo (the reader
// meshtrace uses), without decoding: the library's own floor.
func PcapgoRead(path string) (records int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	head, err := br.Peek(4)
	if err != nil {
		return 0, err
	}
	var src interface {
		ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	if binary.LittleEndian.Uint32(head) == 0x0a0d0d0a {
		src, err = pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
	} else {
		src, err = pcapgo.NewReader(br)
	}
	if err != nil {
		return 0, err
	}
	for {
		_, _, err := src.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			return records, nil
		}
		if err != nil {
			return records, err
		}
		records++
	}
}

// flowCounter counts the bytes written to it and the flows of meshtrace
// replay's text output (lines starting "flow ").
type flowCounter struct {
	n, flows int64
	col      int // bytes of "flow " matched on this line; -1: no match
}

func (c *flowCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	const prefix = "flow "
	for i := 0; i < len(p); {
		if c.col < 0 {
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				break
			}
			i, c.col = i+j+1, 0
			continue
		}
		switch b := p[i]; {
		case b == '\n':
			c.col = 0
		case b == prefix[c.col]:
			c.col++
			if c.col == len(prefix) {
				c.flows++
				c.col = -1
			}
		default:
			c.col = -1
		}
		i++
	}
	return len(p), nil
}

// ReplayRun is one timed `meshtrace replay FILE`.
type ReplayRun struct {
	proc.Usage
	Flows int64
}

// RunReplay runs `bin replay file` (text output, counted and discarded).
func RunReplay(bin string, file File) (ReplayRun, error) {
	var fc flowCounter
	cmd := exec.Command(bin, "replay", file.Path)
	cmd.Stdout = &fc
	u, err := proc.Check(cmd)
	u.Out = fc.n
	r := ReplayRun{Usage: u, Flows: fc.flows}
	if err == nil && int(r.Flows) != file.Flows {
		err = fmt.Errorf("meshtrace replay %s printed %d flows, want %d", file.Path, r.Flows, file.Flows)
	}
	return r, err
}

// ReplayOptions tune the replay measures.
type ReplayOptions struct {
	Bin string // the meshtrace binary
	Dir string // where the captures are written
	// Logf gets progress lines (nil: none).
	Logf func(format string, a ...any)
	// Profile, when set, profiles meshtrace's in-process replay of file
	// under name.
	Profile func(name, file string) error
}

func (o *ReplayOptions) logf(format string, a ...any) {
	if o.Logf != nil {
		o.Logf(format, a...)
	}
}

// timeBest runs f n times and keeps the fastest run.
func timeBest(n int, f func() (time.Duration, error)) (time.Duration, error) {
	var best time.Duration
	for range n {
		d, err := f()
		if err != nil {
			return best, err
		}
		if best == 0 || d < best {
			best = d
		}
	}
	return best, nil
}

func floorTime(path string, want int, read func(string) (int, error)) (time.Duration, error) {
	t0 := time.Now()
	n, err := read(path)
	d := time.Since(t0)
	if err == nil && n != want {
		err = fmt.Errorf("%s: read %d records, want %d", path, n, want)
	}
	return d, err
}

// ReplayLines writes the two captures and returns the replay-1M and
// replay-1M-500k-flows lines.
func ReplayLines(o ReplayOptions) ([]report.Line, error) {
	mesh, err := WriteMeshFile(o.Dir, MeshFrames)
	if err != nil {
		return nil, err
	}
	defer os.Remove(mesh.Path)
	o.logf("capture %s: %d frames, %d flows, %d MB", mesh.Path, mesh.Frames, mesh.Flows, mesh.Size>>20)
	l1, err := replayMesh(o, mesh)
	if err != nil {
		return nil, fmt.Errorf("replay-1M: %w", err)
	}
	os.Remove(mesh.Path)
	many, err := WriteManyFlowsFile(o.Dir, ManyFlows)
	if err != nil {
		return []report.Line{l1}, err
	}
	defer os.Remove(many.Path)
	o.logf("capture %s: %d frames, %d flows, %d MB", many.Path, many.Frames, many.Flows, many.Size>>20)
	l2, err := replayMany(o, many)
	if err != nil {
		return []report.Line{l1}, fmt.Errorf("replay-1M-500k-flows: %w", err)
	}
	return []report.Line{l1, l2}, nil
}

func replayMesh(o ReplayOptions, f File) (report.Line, error) {
	l := report.Line{Name: "replay-1M"}
	// Warm the page cache and the binaries, untimed.
	if _, err := FloorRead(f.Path); err != nil {
		return l, err
	}
	var ours ReplayRun
	for i := range 2 {
		r, err := RunReplay(o.Bin, f)
		if err != nil {
			return l, err
		}
		o.logf("meshtrace replay, run %d: %v wall, %v cpu, %.0f MB rss, %d MB out", i, r.Wall.Round(time.Millisecond), r.CPU.Round(time.Millisecond), r.RSSMB(), r.Out>>20)
		if ours.Wall == 0 || r.Wall < ours.Wall {
			ours = r
		}
	}
	tshark, err := proc.Check(exec.Command("tshark", "-r", f.Path, "-q", "-z", "conv,tcp"))
	if err != nil {
		return l, err
	}
	o.logf("tshark -q -z conv,tcp: %v wall, %v cpu, %.0f MB rss", tshark.Wall.Round(time.Millisecond), tshark.CPU.Round(time.Millisecond), tshark.RSSMB())
	floor, err := timeBest(3, func() (time.Duration, error) { return floorTime(f.Path, f.Frames, FloorRead) })
	if err != nil {
		return l, err
	}
	lib, err := timeBest(3, func() (time.Duration, error) { return floorTime(f.Path, f.Frames, PcapgoRead) })
	if err != nil {
		return l, err
	}
	startup, err := startupTime(o.Bin)
	if err != nil {
		return l, err
	}
	r, fr := tshark.Wall.Seconds()/ours.Wall.Seconds(), ours.Wall.Seconds()/floor.Seconds()
	l.Set("ratio", r)
	l.Set("floor_ratio", fr)
	l.Set("seconds", ours.Wall.Seconds())
	l.Set("cpu_s", ours.CPU.Seconds())
	l.Set("rss_mb", ours.RSSMB())
	l.Set("out_mb", float64(ours.Out)/(1<<20))
	l.Set("tshark_s", tshark.Wall.Seconds())
	l.Set("floor_ms", ms(floor))
	l.Set("pcapgo_ms", ms(lib))
	l.Set("startup_ms", ms(startup))
	l.Set("frames", f.Frames)
	l.Set("flows", f.Flows)
	l.Set("file_mb", f.Size>>20)
	l.Set("mframes_per_s", float64(f.Frames)/ours.Wall.Seconds()/1e6)
	l.Met(fmt.Sprintf("ratio>=%g,floor_ratio<=%g", TargetReplayRatio, TargetReplayFloorRatio), r >= TargetReplayRatio && fr <= TargetReplayFloorRatio)
	if o.Profile != nil {
		if err := o.Profile("replay-1M", f.Path); err != nil {
			return l, err
		}
	}
	return l, nil
}

func replayMany(o ReplayOptions, f File) (report.Line, error) {
	l := report.Line{Name: "replay-1M-500k-flows"}
	if _, err := FloorRead(f.Path); err != nil {
		return l, err
	}
	r, err := RunReplay(o.Bin, f)
	if err != nil {
		return l, err
	}
	o.logf("meshtrace replay: %v wall, %v cpu, %.0f MB rss, %d MB out", r.Wall.Round(time.Millisecond), r.CPU.Round(time.Millisecond), r.RSSMB(), r.Out>>20)
	floor, err := timeBest(3, func() (time.Duration, error) { return floorTime(f.Path, f.Frames, FloorRead) })
	if err != nil {
		return l, err
	}
	s, rss := r.Wall.Seconds(), r.RSSMB()
	l.Set("seconds", s)
	l.Set("rss_mb", rss)
	l.Set("cpu_s", r.CPU.Seconds())
	l.Set("floor_ratio", s/floor.Seconds())
	l.Set("floor_ms", ms(floor))
	l.Set("out_mb", float64(r.Out)/(1<<20))
	l.Set("frames", f.Frames)
	l.Set("flows", f.Flows)
	l.Set("file_mb", f.Size>>20)
	l.Met(fmt.Sprintf("seconds<=%g,rss_mb<=%g", TargetManySeconds, TargetManyRSSMB), s <= TargetManySeconds && rss <= TargetManyRSSMB)
	if o.Profile != nil {
		if err := o.Profile("replay-1M-500k-flows", f.Path); err != nil {
			return l, err
		}
	}
	return l, nil
}

// startupTime is the best of 5 `meshtrace --version`: what a process
// start costs, included in every timed meshtrace run.
func startupTime(bin string) (time.Duration, error) {
	return timeBest(5, func() (time.Duration, error) {
		u, err := proc.Check(exec.Command(bin, "--version"))
		return u.Wall, err
	})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
