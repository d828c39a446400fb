package doctor_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/testutil"
)

// brokenFixtures are the recorded bundles that hold a fault on purpose,
// with the only codes above info doctor may report on them.
var brokenFixtures = map[string][]string{
	"captures/bundle-node0-broken":     {"redirect-wrong"},
	"cmdout/vm-ipvs-weight-zero/node0": {"backends-weight-zero"},
}

// TestNoFalsePositives: doctor reports nothing at warning or error on
// every recorded healthy node (real Docker 20.10 and 28 nodes, the
// built-in mesh, the write-up layouts), as collected and as read with
// plain `ip addr`; the recordings of a fault report only that fault.
func TestNoFalsePositives(t *testing.T) {
	for _, dir := range testutil.RecordedBundles(t, "../fixtures") {
		rel, _ := filepath.Rel("../fixtures", dir)
		allowed := map[string]bool{}
		for _, c := range brokenFixtures[filepath.ToSlash(rel)] {
			allowed[c] = true
		}
		for variant, d := range map[string]string{"as recorded": dir, "plain ip addr": testutil.PlainBundle(t, dir)} {
			r := checkBundle(t, d)
			for _, f := range serious(r) {
				if !allowed[f.Code] {
					t.Errorf("%s (%s): %s [%s] in %s: %s\n  evidence: %s", rel, variant, strings.ToUpper(string(f.Severity)), f.Code, f.Netns, f.Summary, f.Evidence)
				}
			}
		}
	}
}
