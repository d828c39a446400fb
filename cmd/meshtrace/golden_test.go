package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/meshtrace/meshtrace/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// run executes the CLI in-process, after resetting every flag to its
// default: cobra keeps flag values between executions.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	resetFlags(root)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	code := 0
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
		out.WriteString(ee.msg)
	case err != nil:
		code = 1
		out.WriteString(err.Error())
	}
	return out.String(), code
}

func resetFlags(c *cobra.Command) {
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			_ = sv.Replace(nil)
		} else {
			_ = f.Value.Set(f.DefValue)
		}
		f.Changed = false
	})
	for _, sub := range c.Commands() {
		resetFlags(sub)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/meshtrace -run Golden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, p, got, want)
	}
}

func TestGoldenBundles(t *testing.T) {
	const fx = "../../fixtures/bundles/"
	const vm = "../../fixtures/swarm-vm/node0"
	const vm2 = "../../fixtures/swarm-vm2/node0"
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"modern-inspect.txt", []string{"inspect", "--from", fx + "modern", "-o", "text"}, 0},
		{"modern-inspect.json", []string{"inspect", "--from", fx + "modern", "-o", "json"}, 0},
		{"modern-inspect.dot", []string{"inspect", "--from", fx + "modern", "-o", "dot"}, 0},
		{"modern-path.txt", []string{"path", "--from", fx + "modern", "--port", "8080", "--proto", "tcp", "-o", "text"}, 4},
		{"modern-path.json", []string{"path", "--from", fx + "modern", "--port", "8080", "--proto", "tcp", "-o", "json"}, 4},
		{"modern-notpublished.txt", []string{"path", "--from", fx + "modern", "--port", "9999", "--proto", "tcp", "-o", "text"}, 2},
		{"docker112-inspect.txt", []string{"inspect", "--from", fx + "docker112", "-o", "text"}, 0},
		{"docker112-path.json", []string{"path", "--from", fx + "docker112", "--port", "8080", "--proto", "tcp", "-o", "json"}, 4},
		{"docker112-path-udp.txt", []string{"path", "--from", fx + "docker112", "--port", "5353", "--proto", "udp", "-o", "text"}, 4},
		{"eastwest-inspect.dot", []string{"inspect", "--from", fx + "eastwest", "-o", "dot"}, 0},
		{"eastwest-path.json", []string{"path", "--from", fx + "eastwest", "--vip", "10.0.1.5", "--netns", "5f0c3a9e1d27", "--port", "80", "--proto", "tcp", "-o", "json"}, 4},
		{"eastwest-path.txt", []string{"path", "--from", fx + "eastwest", "--vip", "10.0.1.5", "--netns", "5f0c3a9e1d27", "--port", "80", "--proto", "tcp", "-o", "text"}, 4},
		// The hand-assembled bundles lack the overlay's ip-neigh.txt and
		// bridge-fdb.txt: the way to their remote backends was not
		// collected, so their paths are unknown (exit 4), never complete.
		// The same layouts recorded with plain `ip addr` (no kinds):
		{"plain-modern-inspect.txt", []string{"inspect", "--from", fx + "plain/modern", "-o", "text"}, 0},
		{"plain-eastwest-inspect.txt", []string{"inspect", "--from", fx + "plain/eastwest", "-o", "text"}, 0},
		// Recorded from a real swarm node (dockerd 20.10, kernel 6.1, IPVS) by scripts/swarm-vm.
		{"swarmvm-inspect.txt", []string{"inspect", "--from", vm, "-o", "text"}, 0},
		{"swarmvm-inspect.json", []string{"inspect", "--from", vm, "-o", "json"}, 0},
		{"swarmvm-path-8080.json", []string{"path", "--from", vm, "--port", "8080", "--proto", "tcp", "-o", "json"}, 0},
		{"swarmvm-path-5353.txt", []string{"path", "--from", vm, "--port", "5353", "--proto", "udp", "-o", "text"}, 0},
		{"swarmvm-path-vip.txt", []string{"path", "--from", vm, "--vip", "10.0.1.2", "--netns", "d6706d6e5669", "--port", "80", "--proto", "tcp", "-o", "text"}, 0},
		{"swarmvm-path-dnsrr.txt", []string{"path", "--from", vm, "--vip", "10.0.1.9", "--netns", "d6706d6e5669", "--port", "80", "--proto", "tcp", "-o", "text"}, 0},
		// A caller with no leg on the VIP's network: where its packet goes.
		{"swarmvm-path-vip-unreachable.txt", []string{"path", "--from", vm, "--vip", "10.0.1.2", "--netns", "55e431cb2652", "--port", "80", "--proto", "tcp", "-o", "text"}, 3},
		{"swarmvm-path-ingress-vip-unreachable.json", []string{"path", "--from", vm, "--vip", "10.0.0.3", "--netns", "d6706d6e5669", "--port", "80", "--proto", "tcp", "-o", "json"}, 3},
		{"swarmvm-doctor.txt", []string{"doctor", "--from", vm, "-o", "text"}, 0},
		{"swarmvm-doctor.json", []string{"doctor", "--from", vm, "-o", "json"}, 0},
		// node0 of a real two-node swarm (scripts/swarm-vm run2): 8080's only
		// task runs on node1, 8081 has one task on each node; the remote
		// backends' VTEP comes from the overlay's neighbour and FDB tables.
		{"swarmvm2-path-8080.txt", []string{"path", "--from", vm2, "--port", "8080", "--proto", "tcp", "-o", "text"}, 0},
		{"swarmvm2-path-8081.json", []string{"path", "--from", vm2, "--port", "8081", "--proto", "tcp", "-o", "json"}, 0},
		{"swarmvm2-doctor.txt", []string{"doctor", "--from", vm2, "-o", "text"}, 0},
		// A name lookup from a task through Docker's embedded DNS: on the
		// Docker 28 node's collect bundle complete (its sockets were
		// collected), on the 20.10 node as far as the rules go (exit 4);
		// the task by its task name.
		{"swarmvm28-path-dns.txt", []string{"path", "--from", "../../fixtures/swarm-vm28/collect", "--dns", "api", "--from-task", "caller.1"}, 0},
		{"swarmvm28-path-dns-tasks.json", []string{"path", "--from", "../../fixtures/swarm-vm28/collect", "--dns", "tasks.rr", "--from-task", "caller.1", "--dns-proto", "tcp", "-o", "json"}, 0},
		{"swarmvm-path-dns.txt", []string{"path", "--from", vm, "--dns", "api", "--from-task", "caller.1"}, 4},
		{"swarmvm-path-dns-notask.txt", []string{"path", "--from", vm, "--dns", "api", "--from-task", "nosuch.1"}, 1},
		// Services and tasks by name (topology.ServiceQueries): a published
		// service's port, the VIP of another from a task (by task name; the
		// port its task listens on), --netns by task name, unknown names.
		{"swarmvm28-path-service.txt", []string{"path", "--from", "../../fixtures/swarm-vm28/collect", "--service", "web"}, 0},
		{"swarmvm28-path-service-task.json", []string{"path", "--from", "../../fixtures/swarm-vm28/collect", "--service", "api", "--from-task", "caller.1", "-o", "json"}, 0},
		{"swarmvm28-path-netns-task.txt", []string{"path", "--from", "../../fixtures/swarm-vm28/collect", "--vip", "10.0.1.2", "--netns", "caller.1", "--port", "80"}, 0},
		{"swarmvm28-path-service-unknown.txt", []string{"path", "--from", "../../fixtures/swarm-vm28/collect", "--service", "nope"}, 1},
		{"swarmvm28-path-service-notask.txt", []string{"path", "--from", "../../fixtures/swarm-vm28/collect", "--service", "api", "--from-task", "nope.1"}, 1},
		{"docker112-path-service.txt", []string{"path", "--from", fx + "docker112", "--service", "web"}, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, code := run(t, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d: %s", code, c.code, got)
			}
			golden(t, c.name, got)
		})
	}
}

// A broken bundle (a copy of modern without the sandbox's IPVS service)
// breaks at the sandbox with exit 3 and says why.
func TestPathBrokenBundleExit3(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../../fixtures/bundles/modern", dir)
	if err := os.WriteFile(filepath.Join(dir, "netns/ingress_sbox/ipvsadm.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, code := run(t, "path", "--from", dir, "--port", "8080", "--proto", "tcp", "-o", "json")
	if code != 3 || !strings.Contains(got, `"kind": "break"`) || !strings.Contains(got, "no IPVS service for fwmark 256") || !strings.Contains(got, `"complete": false`) {
		t.Fatalf("exit %d:\n%s", code, got)
	}
}

func copyTree(t *testing.T, from, to string) { testutil.CopyTree(t, from, to, nil) }

// A bundle missing the ingress sandbox's iptables-save: path cannot tell
// the rest of the way, says what is missing and exits 4 (unknown), neither
// 0 (complete) nor 3 (broken); doctor agrees, finds no fault and exits 4.
func TestPathUnknownExit4(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../../fixtures/swarm-vm/node0", dir)
	if err := os.Remove(filepath.Join(dir, "netns/ingress_sbox/iptables-save.txt")); err != nil {
		t.Fatal(err)
	}
	const line = "UNKNOWN past [ingress_sbox]: its iptables-save was not collected"
	got, code := run(t, "path", "--from", dir, "--port", "8080", "--proto", "tcp", "-o", "text")
	if code != 4 || !strings.Contains(got, "tcp/8080: UNKNOWN") || !strings.Contains(got, line) || strings.Contains(got, "BREAK") {
		t.Fatalf("path exit %d:\n%s", code, got)
	}
	got, code = run(t, "path", "--from", dir, "--port", "8080", "--proto", "tcp", "-o", "json")
	if code != 4 || !strings.Contains(got, `"verdict": "unknown"`) || !strings.Contains(got, `"kind": "unknown"`) {
		t.Fatalf("path json exit %d:\n%s", code, got)
	}
	got, code = run(t, "doctor", "--from", dir, "-o", "text")
	if code != 4 || !strings.Contains(got, "tcp/8080: unknown past ingress_sbox: its iptables-save was not collected") || strings.Contains(got, "ERROR") {
		t.Fatalf("doctor exit %d:\n%s", code, got)
	}
	for _, cmd := range []string{"path", "doctor"} {
		help, _ := run(t, cmd, "--help")
		if !strings.Contains(help, "4 unknown") && !strings.Contains(help, "else 4 when") {
			t.Errorf("%s --help does not document exit status 4:\n%s", cmd, help)
		}
	}
}
