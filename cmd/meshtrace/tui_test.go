package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Plain `meshtrace` opens the interface only on a terminal; under `go
// test` stdout is a pipe, so it prints the help.
func TestPlainWithoutTerminalPrintsHelp(t *testing.T) {
	out, code := run(t)
	if code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, "tui") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestTUIFlags(t *testing.T) {
	out, code := run(t, "tui", "--from", "x", "--mesh", "y")
	if code != 1 || !strings.Contains(out, "--from and --mesh are exclusive") {
		t.Fatalf("exit %d: %s", code, out)
	}
	out, code = run(t, "tui", "extra")
	if code != 1 || !strings.Contains(out, "unknown command") && !strings.Contains(out, "accepts 0 arg") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// TestTUILoadEscapes: the interface draws the model's strings itself; a
// bundle's hostile names reach it escaped.
func TestTUILoadEscapes(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../fixtures/bundles/modern")); err != nil {
		t.Fatal(err)
	}
	evil := "evil\x1b[2J\nFORGED"
	if err := os.Rename(filepath.Join(dir, "netns", "ingress_sbox"), filepath.Join(dir, "netns", evil)); err != nil {
		t.Fatal(err)
	}
	m, err := tuiLoad(sourceFlags{from: dir})(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ns := range m.Namespaces {
		names = append(names, ns.Name)
		if strings.ContainsAny(ns.Name, "\x1b\n") {
			t.Errorf("namespace %q reaches the interface raw", ns.Name)
		}
	}
	if !slices.Contains(names, `evil\x1b[2J\nFORGED`) {
		t.Errorf("namespaces %q: want the hostile one escaped", names)
	}
}
