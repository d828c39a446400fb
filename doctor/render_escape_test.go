package doctor_test

import (
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/internal/testutil"
)

// TestTextEscapesControlCharacters: findings carry names and evidence
// from the node; the text report prints no control character raw.
func TestTextEscapesControlCharacters(t *testing.T) {
	m := load(t, "modern")
	m.Lookup("ingress_sbox").Firewall = nil // a finding or two
	r := doctor.Check(m, doctor.Options{})
	if len(r.Findings) == 0 {
		t.Fatal("no finding to render")
	}
	testutil.Poison(r)
	var out strings.Builder
	if err := doctor.WriteText(&out, r); err != nil {
		t.Fatal(err)
	}
	testutil.NoRawControl(t, "doctor", out.String())
}
