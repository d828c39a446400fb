package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestManPages: `meshtrace man DIR` writes one roff page per command of
// the tree (hidden ones aside), each with its command's name and summary,
// and refuses a directory that is not empty.
func TestManPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man")
	out, code := run(t, "man", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	want := map[string]*cobra.Command{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c != root {
			return
		}
		want[strings.ReplaceAll(c.CommandPath(), " ", "-")+".1"] = c
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) || len(want) < 20 {
		t.Errorf("%d pages for %d commands", len(files), len(want))
	}
	for name, c := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", c.CommandPath(), err)
			continue
		}
		s := string(b)
		// roff escapes the summary's dashes: compare its first words.
		words := strings.Fields(c.Short)[0]
		if !strings.HasPrefix(s, ".nh\n.TH \""+strings.ToUpper(strings.TrimSuffix(name, ".1"))+"\" \"1\"") || !strings.Contains(s, words) {
			t.Errorf("%s:\n%.300s", name, s)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "meshtrace-path.1")); err != nil || !strings.Contains(string(b), "--service NAME") {
		t.Errorf("path's page lacks --service: %v\n%s", err, b)
	}
	if out, code := run(t, "man", dir); code == 0 {
		t.Errorf("a second man into the same directory: %s", out)
	}
}

// TestCompletion: `meshtrace completion SHELL` prints a script for bash,
// zsh and fish that registers meshtrace's completion, and the shell reads
// it without a syntax error where the shell is installed.
func TestCompletion(t *testing.T) {
	for _, c := range []struct{ shell, mark string }{
		{"bash", "complete -o default -F __start_meshtrace meshtrace"},
		{"zsh", "#compdef meshtrace"},
		{"fish", "complete -c meshtrace"},
	} {
		out, code := run(t, "completion", c.shell)
		if code != 0 || !strings.Contains(out, c.mark) {
			t.Errorf("%s: exit %d, no %q:\n%.300s", c.shell, code, c.mark, out)
			continue
		}
		sh, err := exec.LookPath(c.shell)
		if err != nil {
			t.Logf("%s not installed: its script's syntax not checked", c.shell)
			continue
		}
		f := filepath.Join(t.TempDir(), "meshtrace."+c.shell)
		if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command(sh, "-n", f).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", c.shell, err, b)
		}
	}
}

// TestCompleteNames: the shell completes --service and --from-task (and
// --netns) with the names the source knows, and --from with directories.
func TestCompleteNames(t *testing.T) {
	const vm28 = "../../fixtures/swarm-vm28/collect"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "path", "--from", vm28, "--service", ""}, "api\ncaller\nrr\nsapi\nweb\n:4\n"},
		{[]string{"__complete", "path", "--from", vm28, "--service", "api", "--from-task", ""}, "api.1\ncaller.1\nrr.1\nrr.2\nsapi.1\nweb.1\nweb.2\n:4\n"},
		{[]string{"__complete", "path", "--from", vm28, "--vip", "10.0.1.2", "--netns", ""}, "api.1\ncaller.1\n"},
		{[]string{"__complete", "path", "--from", ""}, ":16\n"},
	} {
		out, code := run(t, c.args...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d, want %q in:\n%s", c.args, code, c.want, out)
		}
	}
}
