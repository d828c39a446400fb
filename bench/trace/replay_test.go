package benchtrace

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/trace"
)

// TestReplayVsTshark replays a 1,000,000-frame mesh capture and runs
// `tshark -r FILE -q -z conv,tcp` on the same file, and reports both
// rates and their ratio (target: meshtrace at least 5x faster). It takes
// a while, so it runs only with MESHTRACE_BENCH=1.
func TestReplayVsTshark(t *testing.T) {
	if os.Getenv("MESHTRACE_BENCH") == "" {
		t.Skip("set MESHTRACE_BENCH=1 to run the replay benchmark")
	}
	n := 1_000_000
	file := filepath.Join(t.TempDir(), "mesh-1m.pcapng")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	frames, conns, err := WriteMeshCapture(f, n)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(file)
	t.Logf("capture: %d frames, %d connections, %d MB", frames, conns, st.Size()>>20)

	start := time.Now()
	res, err := trace.Replay([]string{file}, nil, trace.ReplayOptions{})
	ours := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Flows) != conns || res.Frames != frames {
		t.Errorf("replay: %d flows from %d frames, want %d from %d", len(res.Flows), res.Frames, conns, frames)
	}
	for _, fl := range res.Flows[:10] {
		if !fl.Complete || !fl.Answered || len(fl.Packets) != 10 {
			t.Errorf("flow %d: complete %v answered %v, %d packets", fl.ID, fl.Complete, fl.Answered, len(fl.Packets))
		}
	}

	if _, err := exec.LookPath("tshark"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tshark is not installed")
		}
		t.Skip("tshark is not installed")
	}
	var out bytes.Buffer
	cmd := exec.Command("tshark", "-r", file, "-q", "-z", "conv,tcp")
	cmd.Stdout = &out
	start = time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark: %v", err)
	}
	theirs := time.Since(start)
	if !strings.Contains(out.String(), "TCP Conversations") {
		t.Errorf("tshark printed no conversation table:\n%.400s", out.String())
	}
	ratio := theirs.Seconds() / ours.Seconds()
	report := fmt.Sprintf("replay %d frames: meshtrace %s (%.0f frames/s), tshark -z conv,tcp %s (%.0f frames/s): %.1fx",
		frames, ours.Round(time.Millisecond), float64(frames)/ours.Seconds(), theirs.Round(time.Millisecond), float64(frames)/theirs.Seconds(), ratio)
	t.Log(report)
	fmt.Println(report)
	if ratio < 5 {
		t.Errorf("meshtrace replay is %.1fx tshark, target at least 5x", ratio)
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
		if _, err := trace.Replay([]string{file}, nil, trace.ReplayOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(frames)*float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
