package pcapio

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/trace"
)

var update = flag.Bool("update", false, "rewrite the golden files of fixtures/captures/golden")

// TestGolden replays the recorded captures of fixtures/captures (see its
// README) and compares the JSON and text with the golden files.
func TestGolden(t *testing.T) {
	// From trace/, as the golden files were recorded: the source names
	// the bundle by its path.
	t.Chdir("..")
	const fixtureDir = "../fixtures/captures"
	eth, _ := filepath.Glob(filepath.Join(fixtureDir, "*-eth0.pcap"))
	if len(eth) != 1 {
		t.Fatalf("want one *-eth0.pcap fixture, have %v", eth)
	}
	cases := []struct {
		name    string
		files   []string
		bundle  string
		proto   string
		port    int
		wantErr string
	}{
		{name: "mesh-tcp", files: []string{"mesh-tcp.pcapng"}},
		{name: "mesh-tcp-bundle", files: []string{"mesh-tcp.pcapng"}, bundle: "bundle-node0", proto: "tcp", port: 8080},
		{name: "mesh-udp", files: []string{"mesh-udp.pcapng"}},
		{name: "mesh-udp-bundle", files: []string{"mesh-udp.pcapng"}, bundle: "bundle-node0", proto: "udp", port: 5353},
		{name: "sbox-any-sll2-bundle", files: []string{"sbox-any-sll2.pcap"}, bundle: "bundle-node0", proto: "tcp", port: 8080},
		{name: "node1-task-any-sll1", files: []string{"node1-task-any-sll1.pcap"}},
		{name: "per-hop-bundle", files: []string{"sbox-any-sll2.pcap", filepath.Base(eth[0])}, bundle: "bundle-node0", proto: "tcp", port: 8080},
		{name: "broken-redirect-bundle", files: []string{"broken-redirect.pcapng"}, bundle: "bundle-node0-broken", proto: "tcp", port: 8080},
		{name: "truncated", files: []string{"truncated.pcapng"}, wantErr: "truncated.pcapng: packet "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var env *trace.Env
			if tc.bundle != "" {
				env = bundleEnv(t, filepath.Join(fixtureDir, tc.bundle), tc.proto, tc.port)
			}
			var files []string
			for _, f := range tc.files {
				files = append(files, filepath.Join(fixtureDir, f))
			}
			res, err := Replay(files, env, trace.ReplayOptions{})
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			var j, txt bytes.Buffer
			if err := trace.WriteJSON(&j, res); err != nil {
				t.Fatal(err)
			}
			if err := trace.WriteText(&txt, res); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".json", j.Bytes())
			golden(t, tc.name+".txt", txt.Bytes())
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("../fixtures/captures", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (record with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./trace/pcapio -run TestGolden -update to accept):\n%s", name, firstDiff(string(want), string(got)))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n- " + x + "\n+ " + y
		}
	}
	return ""
}
