package doctor_test

import (
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/topology"
)

// TestTextEscapesControlCharacters: findings and what was not checked
// carry names and evidence from the node; the text report prints no
// control character raw.
func TestTextEscapesControlCharacters(t *testing.T) {
	for name, breakIt := range map[string]func(m *topology.Model){
		"a finding": func(m *topology.Model) { // no DNAT on the host
			m.Lookup("host").Firewall.Table("nat").Chain("DOCKER-INGRESS").Rules = nil
		},
		"not checked": func(m *topology.Model) { m.Lookup("ingress_sbox").Firewall = nil },
	} {
		m := load(t, "modern")
		breakIt(m)
		r := doctor.Check(m, doctor.Options{})
		if len(r.Findings)+len(r.Unknown) == 0 {
			t.Fatalf("%s: nothing to render", name)
		}
		testutil.Poison(r)
		var out strings.Builder
		if err := doctor.WriteText(&out, r); err != nil {
			t.Fatal(err)
		}
		testutil.NoRawControl(t, "doctor, "+name, out.String())
	}
}
