package benchtrace

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/pcapio"
)

// TestReplayLines runs the replay measures (ReplayLines, what
// scripts/bench runs: meshtrace replay against tshark and the read
// floor, and over 500,000 flows) and logs their lines; timings are never
// asserted. It takes a while, so it runs only with MESHTRACE_BENCH=1.
func TestReplayLines(t *testing.T) {
	if os.Getenv("MESHTRACE_BENCH") == "" {
		t.Skip("set MESHTRACE_BENCH=1 to run the replay benchmark")
	}
	lines, err := ReplayLines(ReplayOptions{Bin: testutil.Meshtrace(t), Dir: t.TempDir(), Logf: t.Logf})
	for _, l := range lines {
		t.Log(l)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestManyFlowsCapture checks the many-flows capture: every exchange a
// complete, answered UDP flow to the published port, and both floors
// count every record.
func TestManyFlowsCapture(t *testing.T) {
	f, err := WriteManyFlowsFile(t.TempDir(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if f.Frames != 2000 {
		t.Fatalf("%d frames, want 2000", f.Frames)
	}
	res, err := pcapio.Replay([]string{f.Path}, nil, trace.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Flows) != 1000 || res.Frames != 2000 {
		t.Fatalf("replay: %d flows from %d frames, want 1000 from 2000", len(res.Flows), res.Frames)
	}
	for _, fl := range res.Flows {
		if fl.Proto != "udp" || !fl.Complete || !fl.Answered || fl.Server != "192.168.77.10:5353" {
			t.Fatalf("flow %d: %s to %s, complete %v, answered %v", fl.ID, fl.Proto, fl.Server, fl.Complete, fl.Answered)
		}
	}
	for name, read := range map[string]func(string) (int, error){"floor": FloorRead, "pcapgo": PcapgoRead} {
		if n, err := read(f.Path); err != nil || n != 2000 {
			t.Errorf("%s read %d records, %v; want 2000", name, n, err)
		}
	}
}

// TestFloorReadPcapng checks the floor on the mesh capture (pcapng with
// 14 interfaces) against pcapgo's count.
func TestFloorReadPcapng(t *testing.T) {
	f, err := WriteMeshFile(t.TempDir(), 5000)
	if err != nil {
		t.Fatal(err)
	}
	n, err := FloorRead(f.Path)
	if err != nil || n != f.Frames {
		t.Fatalf("floor read %d records, %v; want %d", n, err, f.Frames)
	}
	if m, err := PcapgoRead(f.Path); err != nil || m != n {
		t.Fatalf("pcapgo read %d records, %v; floor %d", m, err, n)
	}
	// A truncated file is an error, not a short count.
	b, _ := os.ReadFile(f.Path)
	cut := filepath.Join(t.TempDir(), "cut.pcapng")
	os.WriteFile(cut, b[:len(b)-7], 0o644)
	if _, err := FloorRead(cut); err == nil {
		t.Error("floor read a truncated pcapng without error")
	}
}

// TestFlowCounter counts "flow " lines however the output is split.
func TestFlowCounter(t *testing.T) {
	out := "udp/5353: 3 flow(s)\n\nflow 1  udp a -> b\n  flow x\nflow 2\nflo\nflow 3  y\nflowing\n"
	for size := 1; size <= len(out); size++ {
		var c flowCounter
		for i := 0; i < len(out); i += size {
			c.Write([]byte(out[i:min(len(out), i+size)]))
		}
		if c.flows != 3 || c.n != int64(len(out)) {
			t.Fatalf("writes of %d bytes: %d flows, %d bytes; want 3, %d", size, c.flows, c.n, len(out))
		}
	}
}

// BenchmarkReplay measures replay on a 100,000-frame capture.
func BenchmarkReplay(b *testing.B) {
	file := filepath.Join(b.TempDir(), "mesh.pcapng")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	frames, _, err := WriteMeshCapture(f, 100_000)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := pcapio.Replay([]string{file}, nil, trace.ReplayOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(frames)*float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
