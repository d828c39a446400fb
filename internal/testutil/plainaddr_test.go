package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlainIPAddr: every recorded pair of `ip -d addr` and `ip addr` of the
// same namespace at the same moment; PlainIPAddr of the first is the second.
func TestPlainIPAddr(t *testing.T) {
	const fx = "../../fixtures/"
	pairs := map[string]string{} // detailed -> plain
	for _, ns := range []string{"host", "55e431cb2652"} {
		d := filepath.Join(fx, "swarm-vm/node0/netns", ns)
		pairs[filepath.Join(d, "ip-addr.txt")] = filepath.Join(d, "ip-addr-plain.txt")
	}
	dirs, _ := filepath.Glob(filepath.Join(fx, "cmdout/docker-shaped/netns/*"))
	for _, d := range dirs {
		pairs[filepath.Join(d, "ip-d-addr.txt")] = filepath.Join(d, "ip-addr.txt")
	}
	for _, n := range []string{"a", "b"} {
		pairs[filepath.Join(fx, "cmdout/variants/named-"+n+"-ip-d-addr.txt")] = filepath.Join(fx, "cmdout/variants/named-"+n+"-ip-addr.txt")
	}
	if len(pairs) < 9 {
		t.Fatalf("only %d recorded pairs found", len(pairs))
	}
	for dpath, ppath := range pairs {
		d, err := os.ReadFile(dpath)
		if err != nil {
			t.Fatal(err)
		}
		p, err := os.ReadFile(ppath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(d), " promiscuity ") || strings.Contains(string(p), " promiscuity ") {
			t.Fatalf("%s / %s: not a -d / plain pair", dpath, ppath)
		}
		if got := PlainIPAddr(string(d)); got != string(p) {
			t.Errorf("PlainIPAddr(%s) is not %s:\n%s", dpath, ppath, got)
		}
	}
}
