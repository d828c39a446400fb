package parse

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
)

// TestIpvsadmSwarmVM parses the three ipvsadm listings recorded from one
// real IPVS table (scripts/swarm-vm record: `ipvsadm-save -n`, `ipvsadm -Ln`,
// `ipvsadm -Ln --stats`, taken a moment apart on a swarm node) and checks
// that they describe the same services and real servers.
func TestIpvsadmSwarmVM(t *testing.T) {
	dirs, _ := filepath.Glob("../../fixtures/swarm-vm/*/netns/*")
	n := 0
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "ipvsadm-Ln.txt")); err != nil {
			continue
		}
		var tables [3]*topology.IPVS
		for i, f := range []string{"ipvsadm.txt", "ipvsadm-Ln.txt", "ipvsadm-Ln-stats.txt"} {
			p := filepath.Join(dir, f)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if tables[i], err = Ipvsadm(p, strings.NewReader(string(b))); err != nil {
				t.Fatal(err)
			}
		}
		save, list, stats := shape(tables[0], true), shape(tables[1], true), shape(tables[2], false)
		if save != list {
			t.Errorf("%s: ipvsadm-save and -Ln differ:\n%s\n--\n%s", dir, save, list)
		}
		if shape(tables[0], false) != stats {
			t.Errorf("%s: ipvsadm-save and -Ln --stats differ:\n%s\n--\n%s", dir, shape(tables[0], false), stats)
		}
		for _, s := range tables[2].Services {
			if s.Stats == nil {
				t.Errorf("%s: FWM %d has no stats", dir, s.FWMark)
			}
			for _, d := range s.Dests {
				if !d.WeightUnknown || d.Stats == nil {
					t.Errorf("%s: stats dest %s: weight unknown %v, stats %v", dir, d.Addr, d.WeightUnknown, d.Stats)
				}
			}
		}
		if len(tables[0].Services) == 0 {
			t.Errorf("%s: no services", dir)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no recorded ipvsadm listings under fixtures/swarm-vm")
	}
}

// shape is a table's services and real servers, with the forwarding
// method and weight when the listing shows them.
func shape(t *topology.IPVS, full bool) string {
	var lines []string
	for _, s := range t.Services {
		svc := fmt.Sprintf("fwm=%d %s %s:%d", s.FWMark, s.Proto, s.Addr, s.Port)
		if full {
			svc += " " + s.Scheduler
		}
		for _, d := range s.Dests {
			l := fmt.Sprintf("%s -> %s:%d", svc, d.Addr, d.Port)
			if full {
				l += fmt.Sprintf(" %s w%d", d.Forward, d.Weight)
			}
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
