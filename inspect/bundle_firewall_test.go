package inspect

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/testutil"
)

// TestBundleCutSave: an iptables-save of the host holding only its nat
// table (iptables-save -t nat, as a write-up pastes it), cut from a
// recorded Docker node: the tables it lacks are not collected, never
// empty, and a note says why; the whole file leaves nothing uncollected.
func TestBundleCutSave(t *testing.T) {
	const src = "../fixtures/bundles/modern"
	whole, err := Bundle(src)
	if err != nil {
		t.Fatal(err)
	}
	if fw := whole.Lookup("host").Firewall; len(fw.NotCollected) > 0 {
		t.Fatalf("the whole iptables-save: not collected %v", fw.NotCollected)
	}
	for _, c := range []struct{ netns, keep string }{{"host", "*nat"}, {"host", "*filter"}, {"ingress_sbox", "*mangle"}} {
		dir := t.TempDir()
		testutil.CopyTree(t, src, dir, nil)
		p := filepath.Join(dir, "netns", c.netns, "iptables-save.txt")
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var kept []string
		for part := range strings.SplitSeq(string(data), "\n*") {
			if strings.HasPrefix("*"+strings.TrimPrefix(part, "*"), c.keep+"\n") {
				kept = append(kept, "*"+strings.TrimPrefix(part, "*"))
			}
		}
		if len(kept) != 1 {
			t.Fatalf("%s: no %s table in %s", c.netns, c.keep, p)
		}
		os.WriteFile(p, []byte(strings.TrimSuffix(kept[0], "\n")+"\n"), 0o644)
		m, err := Bundle(dir)
		if err != nil {
			t.Fatal(err)
		}
		fw := m.Lookup(c.netns).Firewall
		if len(fw.Tables) != 1 || len(fw.NotCollected) != 4 || fw.Collected(strings.TrimPrefix(c.keep, "*")) == false {
			t.Errorf("%s kept %s: tables %d, not collected %v", c.netns, c.keep, len(fw.Tables), fw.NotCollected)
		}
		if !slices.ContainsFunc(m.Notes, func(n string) bool { return strings.Contains(n, "it was cut") }) {
			t.Errorf("%s kept %s: no note: %q", c.netns, c.keep, m.Notes)
		}
	}
}
