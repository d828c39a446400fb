package capture

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/meshtrace/meshtrace/inspect"
)

// fixtureDir holds the recorded captures and their golden outputs.
const fixtureDir = "../fixtures/captures"

// TestRecordFixtures records fixtures/captures from a real mesh. It runs
// only with MESHTRACE_RECORD=1 (it replaces the committed files):
//
//	MESHTRACE_RECORD=1 go test ./trace -run TestRecordFixtures
//	go test ./trace -run TestGolden -update
func TestRecordFixtures(t *testing.T) {
	if os.Getenv("MESHTRACE_RECORD") == "" {
		t.Skip("set MESHTRACE_RECORD=1 to record fixtures/captures from a live mesh")
	}
	name := "fixture"
	run(t, "mesh", "down", "--name", name)
	args := []string{"mesh", "up", "--name", name, "--nodes", "2", "--lb", "iptables", "--service", "web:8080:80x2", "--service", "dns:5353:53/udpx2"}
	if out, code := run(t, args...); code != 0 {
		t.Fatalf("mesh up: %s", out)
	}
	t.Cleanup(func() { run(t, "mesh", "down", "--name", name) })
	out, _ := run(t, "mesh", "status", "--name", name, "-o", "json")
	var st meshState
	if err := jsonUnmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	tasks := map[string]string{} // node -> web task netns path
	for _, tk := range st.Services[0].Tasks {
		tasks[tk.Node] = tk.Netns
	}
	dir := fixtureDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := func(f string) string { return filepath.Join(dir, f) }
	// trace --pcap never overwrites a file: the old recordings go first.
	for _, f := range []string{"mesh-tcp.pcapng", "mesh-udp.pcapng", "broken-redirect.pcapng"} {
		os.Remove(p(f))
	}
	base := "/run/meshtrace/" + name

	// trace's own pcapng, TCP and UDP, one local and one remote backend.
	run(t, "trace", "--mesh", name, "--port", "8080", "--probe", "--count", "2", "--pcap", p("mesh-tcp.pcapng"))
	run(t, "trace", "--mesh", name, "--port", "5353", "--proto", "udp", "--probe", "--count", "2", "--pcap", p("mesh-udp.pcapng"))

	// tcpdump: -i any (cooked v2) in node0's sandbox, -i any cooked v1
	// in node1's web task, eth0 of node0's web task (a file named after
	// its netns, as one would collect them one per hop).
	node0Task := filepath.Base(tasks["node0"])
	stops := []func(){
		tcpdump(t, filepath.Join(base, "node0/netns/ingress_sbox"), p("sbox-any-sll2.pcap"), "-i", "any", "tcp"),
		tcpdump(t, tasks["node1"], p("node1-task-any-sll1.pcap"), "-i", "any", "-y", "LINUX_SLL", "tcp"),
		tcpdump(t, tasks["node0"], p(node0Task+"-eth0.pcap"), "-i", "eth0", "tcp"),
	}
	run(t, "trace", "--mesh", name, "--port", "8080", "--probe", "--count", "2")
	waitQuiet(p("sbox-any-sll2.pcap"), p("node1-task-any-sll1.pcap"), p(node0Task+"-eth0.pcap"))
	for _, s := range stops {
		s()
	}
	for _, f := range []string{"sbox-any-sll2.pcap", "node1-task-any-sll1.pcap", node0Task + "-eth0.pcap"} {
		os.Chown(p(f), 0, 0) // tcpdump wrote them as its own user
	}

	// A broken path: node0's web task lost its REDIRECT.
	if out, err := exec.Command("nsenter", "--net="+tasks["node0"], "iptables", "-w", "-t", "nat", "-F", "PREROUTING").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	run(t, "trace", "--mesh", name, "--port", "8080", "--probe", "--count", "2", "--timeout", "10s", "--pcap", p("broken-redirect.pcapng"))
	collect(t, base, p("bundle-node0-broken"))
	if out, err := exec.Command("nsenter", "--net="+tasks["node0"], "iptables", "-w", "-t", "nat", "-A", "PREROUTING",
		"-d", st.Services[0].Tasks[0].IP+"/32", "-p", "tcp", "-m", "tcp", "--dport", "8080", "-j", "REDIRECT", "--to-ports", "80").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}

	// A truncated file: the first two thirds of the TCP trace.
	b, err := os.ReadFile(p("mesh-tcp.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("truncated.pcapng"), b[:len(b)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}

	// node0's state as a bundle, for replays with a source.
	collect(t, base, p("bundle-node0"))
}

func collect(t *testing.T, base, dir string) {
	t.Helper()
	os.RemoveAll(dir)
	err := inspect.Collect(context.Background(), inspect.CollectOptions{
		HostNetns: filepath.Join(base, "node0/host"), NetnsDirs: []string{filepath.Join(base, "node0/netns")}, NoDocker: true,
	}, dir)
	if err != nil {
		t.Fatal(err)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
