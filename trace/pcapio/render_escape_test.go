package pcapio

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/trace"
)

// TestTextEscapesControlCharacters: interface names from a capture,
// namespaces, rules, notes and errors reach the text output escaped.
func TestTextEscapesControlCharacters(t *testing.T) {
	env := bundleEnv(t, filepath.Join(fixtureDir, "bundle-node0"), "tcp", 8080)
	res, err := Replay([]string{filepath.Join(fixtureDir, "mesh-tcp.pcapng")}, env, trace.ReplayOptions{})
	if err != nil || len(res.Flows) == 0 {
		t.Fatalf("%d flows, %v", len(res.Flows), err)
	}
	res.Notes = append(res.Notes, "a note")
	res.Error = "an error"
	res.Probes = append(res.Probes, trace.ProbeResult{From: "client", To: "x", Error: "refused"})
	res.Points[0].Error = "a point error"
	testutil.Poison(res)
	var out strings.Builder
	if err := trace.WriteText(&out, res); err != nil {
		t.Fatal(err)
	}
	testutil.NoRawControl(t, "trace", out.String())
}
