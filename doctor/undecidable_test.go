package doctor_test

import (
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/topology"
)

// TestUndecidableIsNotAFault: a rule on the path that a listing does not
// show exactly (topology.Rule.Undecidable) is a check not made, said as
// unknown with the rule's reason, never a fault blamed on the node.
func TestUndecidableIsNotAFault(t *testing.T) {
	for _, ns := range []string{"ingress_sbox", "09cd513d96a2"} {
		m := load(t, "modern")
		for _, tb := range m.Lookup(ns).Firewall.Tables {
			for _, c := range tb.Chains {
				for _, r := range c.Rules {
					r.Undecidable = "-L prints `foo`, which does not read back"
				}
			}
		}
		r := doctor.Check(m, doctor.Options{})
		for _, f := range r.Findings {
			if f.Severity != doctor.Info {
				t.Errorf("%s: %s %s: %s", ns, f.Severity, f.Code, f.Summary)
			}
		}
		found := false
		for _, u := range r.Unknown {
			found = found || u.Netns == ns && strings.Contains(u.Reason, "which does not read back")
		}
		if !found || len(r.Ports) != 1 || r.Ports[0].Verdict != topology.VerdictUnknown {
			t.Errorf("%s: unknown %+v, ports %+v", ns, r.Unknown, r.Ports)
		}
	}
}
