package main

import (
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
