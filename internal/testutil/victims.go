package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// Victims are a file and a directory outside what a test's writer may
// write, for links planted to lead there; Untouched checks them.
type Victims struct {
	File, Dir string
}

const victimText = "keep me\n"

// NewVictims makes them in a directory of their own, returned too.
func NewVictims(t testing.TB) (top string, v Victims) {
	t.Helper()
	top = t.TempDir()
	v = Victims{File: filepath.Join(top, "victim"), Dir: filepath.Join(top, "outside")}
	if err := os.WriteFile(v.File, []byte(victimText), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(v.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return top, v
}

// Untouched fails the test when the file changed or the directory got
// an entry.
func (v Victims) Untouched(t testing.TB) {
	t.Helper()
	if b, _ := os.ReadFile(v.File); string(b) != victimText {
		t.Errorf("written through a link: %s now holds %q", v.File, b)
	}
	if ents, _ := os.ReadDir(v.Dir); len(ents) != 0 {
		t.Errorf("written through a link into %s: %v", v.Dir, ents)
	}
}
