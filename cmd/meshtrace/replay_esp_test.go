package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
)

// espFixture is the recorded east-west trace over the encrypted overlay of
// the two-node Docker 28 lane (its README says how it was made).
const espFixture = "../../fixtures/swarm-vm28-xfrm/trace"

// espReplayArgs are replay's arguments as the lane ran them
// (replay.args, one a line, files relative to the fixture).
func espReplayArgs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(espFixture, "replay.args"))
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	from := false
	for _, a := range strings.Fields(string(b)) {
		switch node, file, _ := strings.Cut(a, "="); {
		case from:
			a, from = filepath.Join(espFixture, a), false
		case a == "--from":
			from = true
		case file != "" && strings.HasSuffix(file, ".pcapng"):
			a = node + "=" + filepath.Join(espFixture, file)
		}
		args = append(args, a)
	}
	return args
}

// outSPIs are the SPIs the hosts' out policies send through, by node.
func outSPIs(t *testing.T) map[string]topology.SPI {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(espFixture, "swarm", "*", "netns", "host", "ip-xfrm-policy.txt"))
	out := map[string]topology.SPI{}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		pols, _, err := parse.XfrmPolicy(f, r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		node := filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(f))))
		for _, p := range pols {
			if p.Dir == topology.XfrmOut && len(p.Tmpls) == 1 {
				out[node] = p.Tmpls[0].SPI
			}
		}
	}
	if len(out) != 2 {
		t.Fatalf("out SPIs %v: want one per node", out)
	}
	return out
}

// TestReplayESP replays both nodes' captures of the lane's east-west trace
// over their swarm collect: the call to the task on the other node goes
// through ESP with the SPI of the caller's node's out policy, the same
// (SPI, seq) on both underlays, the reply through the other node's.
func TestReplayESP(t *testing.T) {
	args := espReplayArgs(t)
	args = append([]string{"replay"}, args...)
	out, code := run(t, append(args, "-o", "json")...)
	if code != 0 && code != 3 {
		t.Fatalf("replay exit %d:\n%s", code, out)
	}
	golden(t, "swarmvm28-replay-esp.json", out)
	txt, _ := run(t, args...)
	golden(t, "swarmvm28-replay-esp.txt", txt)

	var res trace.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	spis := outSPIs(t)
	crossed := 0
	for _, fl := range res.Flows {
		var req, rep []trace.Hop
		for _, h := range fl.Hops {
			if h.ESP != nil {
				req = append(req, h)
			}
		}
		for _, h := range fl.ReplyHops {
			if h.ESP != nil {
				rep = append(rep, h)
			}
		}
		if len(req) == 0 {
			continue
		}
		crossed++
		if len(req) != 2 || req[0].ESP.Seq != req[1].ESP.Seq || req[0].ESP.SPI != req[1].ESP.SPI {
			t.Errorf("flow %d: request's ESP sightings %+v: want one on each underlay, one (SPI, seq)", fl.ID, req)
			continue
		}
		from := req[0].Node
		if req[0].Dir != "out" {
			from = req[1].Node
		}
		if req[0].ESP.SPI != spis[from] {
			t.Errorf("flow %d: request through SPI %s, %s's out policy names %s", fl.ID, req[0].ESP.SPI, from, spis[from])
		}
		matches := []string{req[0].ESP.Match, req[1].ESP.Match}
		slices.Sort(matches)
		if !slices.Equal(matches, []string{"length", "spi+seq"}) {
			t.Errorf("flow %d: matched by %v", fl.ID, matches)
		}
		if len(rep) == 0 || rep[0].ESP.SPI == req[0].ESP.SPI || !slices.Contains(valuesOf(spis), rep[0].ESP.SPI) {
			t.Errorf("flow %d: reply's ESP %+v", fl.ID, rep)
		}
		// The nodes' clocks differ by half a second: put on one clock,
		// the reply leaves the other node before it reaches this one,
		// and no rewrite is read from a wrong order.
		if len(fl.ReplyHops) == 0 || fl.ReplyHops[0].Node == from {
			t.Errorf("flow %d: the reply starts on %s, the caller's node", fl.ID, from)
		}
		for _, rw := range fl.Rewrites {
			if strings.Contains(rw.Note, "was not seen") {
				t.Errorf("flow %d: a rewrite read from the order of two clocks: %+v", fl.ID, rw)
			}
		}
	}
	if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, "clock runs") }) {
		t.Errorf("no note of the nodes' clocks: %q", res.Notes)
	}
	if crossed == 0 {
		t.Fatal("no flow crossed to the other node through ESP")
	}
	for _, s := range res.ESP {
		if s.SA == "" || s.Unmatched+s.Ambiguous != 0 {
			t.Errorf("SA %s: %+v", s.SPI, s)
		}
	}
}

func valuesOf(m map[string]topology.SPI) []topology.SPI {
	var out []topology.SPI
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
