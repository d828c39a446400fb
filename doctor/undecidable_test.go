package doctor_test

import (
	"testing"

	"github.com/meshtrace/meshtrace/doctor"
)

// TestUndecidableIsNotAFault: a rule on the path that a listing does not
// show exactly (topology.Rule.Undecidable) is a check not made, said as
// Info with what to collect instead, never an error blamed on the node.
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
		found := false
		for _, f := range r.Findings {
			if f.Severity != doctor.Info {
				t.Errorf("%s: %s %s: %s", ns, f.Severity, f.Code, f.Summary)
			}
			found = found || f.Code == "rule-undecidable" && f.Netns == ns && f.Fix != "" && f.Confirm != ""
		}
		if !found {
			t.Errorf("%s: no rule-undecidable finding in %+v", ns, r.Findings)
		}
	}
}
