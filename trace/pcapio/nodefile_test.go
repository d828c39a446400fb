package pcapio

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNodeFile(t *testing.T) {
	dir := t.TempDir()
	odd := filepath.Join(dir, "a=b.pcap") // a file whose name has "=" is a file
	if err := os.WriteFile(odd, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ arg, node, path string }{
		{"node1=/tmp/x.pcapng", "node1", "/tmp/x.pcapng"},
		{"swarm-node0=rel/x.pcapng", "swarm-node0", "rel/x.pcapng"},
		{"/tmp/x.pcapng", "", "/tmp/x.pcapng"},
		{"dir/a=b.pcap", "", "dir/a=b.pcap"}, // "=" after a "/"
		{"=x.pcap", "", "=x.pcap"},
		{odd, "", odd},
	} {
		node, path := NodeFile(c.arg)
		if node != c.node || path != c.path {
			t.Errorf("NodeFile(%q) = %q, %q; want %q, %q", c.arg, node, path, c.node, c.path)
		}
	}
	// The node goes to the points of an interface block that names none
	// (here the mesh's client), the others keep theirs.
	points := func(arg string) map[string]string {
		rd := Open([]string{arg})
		for {
			if _, err := rd.next(); err != nil {
				break
			}
		}
		out := map[string]string{}
		for _, p := range rd.points {
			out[p.Netns+"/"+p.Ifname+" "+p.Role] = p.Node
		}
		return out
	}
	const f = "../../fixtures/captures/mesh-tcp.pcapng"
	plain, tagged := points(f), points("node7="+f)
	if len(plain) == 0 || len(plain) != len(tagged) {
		t.Fatalf("points %v and %v", plain, tagged)
	}
	n := 0
	for k, node := range plain {
		want := node
		if node == "" {
			want = "node7"
			n++
		}
		if tagged[k] != want {
			t.Errorf("point %s: node %q, want %q", k, tagged[k], want)
		}
	}
	if n == 0 {
		t.Error("the fixture has no point without a node: the test proves nothing")
	}
}
