package bundles

import (
	"path/filepath"
	"testing"

	"github.com/meshtrace/meshtrace/inspect"
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
