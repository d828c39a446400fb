package doctor_test

import (
	"context"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/source"
)

// TestServiceVIPs: doctor follows every service VIP's east-west path from
// a task on its network, as `meshtrace path --vip` does: healthy on the
// recorded node, and a VIP whose IPVS service is gone from the network's
// lb_ namespace, or whose real servers are all drained, is named.
func TestServiceVIPs(t *testing.T) {
	check := func(dir string) *doctor.Report {
		t.Helper()
		m, err := source.Load(context.Background(), source.Spec{Bundle: dir})
		if err != nil {
			t.Fatal(err)
		}
		return doctor.Check(m, doctor.Options{})
	}
	r := check(swarmVM)
	if !strings.Contains(r.Coverage.Line(), "east-west VIPs (10.0.1.2, 10.0.1.6)") || len(r.Findings) != 0 {
		t.Fatalf("healthy node: coverage %q, findings %+v", r.Coverage.Line(), r.Findings)
	}
	const lb = "netns/lb_7irhnfg5j/ipvsadm.txt"
	for _, tc := range []struct {
		name string
		edit func(string) string
		code string
	}{
		{"service gone", func(s string) string {
			var keep []string
			for _, l := range strings.Split(s, "\n") {
				if !strings.Contains(l, "-f 256 ") {
					keep = append(keep, l)
				}
			}
			return strings.Join(keep, "\n")
		}, "vip-no-service"},
		{"drained", func(s string) string {
			return strings.ReplaceAll(s, "-r 10.0.1.3:0 -m -w 1", "-r 10.0.1.3:0 -m -w 0")
		}, ""}, // one of two drained: still balanced
		{"all drained", func(s string) string {
			s = strings.ReplaceAll(s, "-r 10.0.1.3:0 -m -w 1", "-r 10.0.1.3:0 -m -w 0")
			return strings.ReplaceAll(s, "-r 10.0.1.4:0 -m -w 1", "-r 10.0.1.4:0 -m -w 0")
		}, "backends-weight-zero"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := check(copyDir(t, swarmVM, lb, tc.edit))
			var got []string
			for _, f := range r.Findings {
				got = append(got, f.Code+"@"+f.Netns+" "+f.Port)
			}
			want := []string{}
			if tc.code != "" {
				want = []string{tc.code + "@lb_7irhnfg5j VIP 10.0.1.2"}
			}
			if strings.Join(got, ";") != strings.Join(want, ";") {
				t.Errorf("findings %q, want %q", got, want)
			}
			if tc.code != "" && r.Exit() != 1 {
				t.Errorf("exit %d, want 1", r.Exit())
			}
		})
	}
}
