package main

import (
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/meshtest"
	"github.com/meshtrace/meshtrace/internal/testutil"
)

// TestNamesOnMesh: the built-in mesh's state plays Docker's metadata, so
// services and tasks go by name there too: web's published port, an
// unknown service listing the known, the VIP's path from a task given by
// its task name (--netns).
func TestNamesOnMesh(t *testing.T) {
	testutil.NeedRoot(t)
	name := meshtest.Name(t)
	meshtest.Up(t, name)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"path", "--mesh", name, "--service", "web"}, 0, "tcp/8080: complete"},
		{[]string{"path", "--mesh", name, "--service", "nope"}, 1, `no service "nope": known services: web`},
		{[]string{"path", "--mesh", name, "--service", "web", "--from-task", "nope.1"}, 1, "known tasks: web.1 (netns "},
		{[]string{"path", "--mesh", name, "--dns", "web", "--from-task", "web.1"}, 0, "complete"},
	} {
		out, errs, code := meshtest.Run(t, c.args...)
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("%v: exit %d, want %d and %q:\n%s%s", c.args, code, c.code, c.want, out, errs)
		}
	}
}
