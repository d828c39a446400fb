package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/meshtest"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/trace"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// TestTracePcapStdout: `trace --pcap - | tshark -r -` on a real trace of
// the built-in mesh (two nodes, its namespaces): standard output is
// pcapng that tshark reads from the pipe, every frame the trace saw with
// its interface named by its hop, the same count per interface as the
// report (JSON, which went to standard error) says each point saw.
func TestTracePcapStdout(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "tshark")
	name := meshtest.Name(t)
	meshtest.Up(t, name, "--nodes", "2")
	tr := exec.Command(testutil.Meshtrace(t), "trace", "--mesh", name, "--port", "8080", "--probe", "--count", "2", "--pcap", "-", "-o", "json")
	var report bytes.Buffer
	tr.Stderr = &report
	ts := exec.Command("tshark", "-r", "-", "-T", "fields", "-e", "frame.interface_name", "-e", "ip.dst")
	var fields, tsErr bytes.Buffer
	ts.Stdout, ts.Stderr = &fields, &tsErr
	pipe, err := tr.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	ts.Stdin = pipe
	if err := ts.Start(); err != nil {
		t.Fatal(err)
	}
	trErr := tr.Run()
	if err := ts.Wait(); err != nil {
		t.Fatalf("tshark -r -: %v\n%s", err, tsErr.String())
	}
	if trErr != nil {
		t.Fatalf("trace: %v\n%s", trErr, report.String())
	}
	var res trace.Result
	if err := json.Unmarshal(report.Bytes(), &res); err != nil {
		t.Fatalf("the report on standard error: %v\n%.500s", err, report.String())
	}
	if len(res.Flows) != 2 || res.Frames == 0 {
		t.Fatalf("%d flows, %d frames:\n%.800s", len(res.Flows), res.Frames, report.String())
	}
	want := map[string]int{}
	for _, p := range res.Points {
		if p.Frames > 0 {
			want[p.Label("node0")] = p.Frames
		}
	}
	got := map[string]int{}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(fields.String()), "\n") {
		ifname, _, _ := strings.Cut(line, "\t")
		got[ifname]++
		n++
	}
	if n != res.Frames {
		t.Errorf("tshark read %d frames from the pipe, the trace saw %d", n, res.Frames)
	}
	for l, c := range want {
		if got[l] != c {
			t.Errorf("%s: tshark read %d frames, the trace's point saw %d", l, got[l], c)
		}
	}
	for _, l := range []string{"client/eth0", "host/eth0", "ingress_sbox/eth1"} {
		if got[l] == 0 {
			t.Errorf("no frame on interface %s: %v", l, got)
		}
	}
	for l := range got {
		if want[l] == 0 {
			t.Errorf("tshark read frames on %q, which is no point of the trace (%v)", l, want)
		}
	}
}
