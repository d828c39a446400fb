package bundles

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/testutil"
)

// TestWriteBig grows the modern bundle's host ruleset and reads it back
// with meshtrace's bundle reader: every rule understood, the count right,
// the published path the base's.
func TestWriteBig(t *testing.T) {
	dir := t.TempDir()
	b, err := WriteBig("../../fixtures/bundles/modern", dir, 400<<10)
	if err != nil {
		t.Fatal(err)
	}
	if b.Size < 400<<10 || b.Size > 401<<10 {
		t.Errorf("size %d, want about %d", b.Size, 400<<10)
	}
	m, err := inspect.Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	host := m.Lookup("host")
	if host == nil || host.Firewall == nil {
		t.Fatal("no host firewall read")
	}
	if got := host.Firewall.RuleCount(); got != b.Rules {
		t.Errorf("read %d rules, wrote %d", got, b.Rules)
	}
	if len(host.Firewall.Unparsed) > 0 {
		t.Errorf("%d lines not understood, first: %+v", len(host.Firewall.Unparsed), host.Firewall.Unparsed[0])
	}
	if len(host.Errors) > 0 {
		t.Errorf("host errors: %q", host.Errors)
	}
	if _, err := filepath.Rel(dir, b.File); err != nil {
		t.Error(err)
	}
}

// TestInspectFromBig runs meshtrace inspect --from on a small grown
// bundle and finds the host's rule count in its text, as BigLine does.
func TestInspectFromBig(t *testing.T) {
	dir := t.TempDir()
	b, err := WriteBig("../../fixtures/bundles/modern", dir, 100<<10)
	if err != nil {
		t.Fatal(err)
	}
	u, out, err := InspectFrom(testutil.Meshtrace(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	m := firewallLine.FindStringSubmatch(out)
	if m == nil || m[1] != strconv.Itoa(b.Rules) {
		t.Fatalf("host rules %v, want %d, in:\n%.800s", m, b.Rules, out)
	}
	if u.MaxRSS == 0 || u.Out == 0 {
		t.Errorf("usage %+v", u)
	}
}

func TestMain(m *testing.M) { testutil.Main(m) }
