package dockerrules

import (
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// rulesOf are the table's rule and chain lines of an iptables-save text,
// counters and comments dropped, in order.
func rulesOf(save, table string) []string {
	var out []string
	in := false
	counters := regexp.MustCompile(`^\[\d+:\d+\] `)
	for _, l := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			in = l == "*"+table
		case in && (strings.HasPrefix(l, "-A") || strings.HasPrefix(l, "[")):
			out = append(out, counters.ReplaceAllString(l, ""))
		case in && strings.HasPrefix(l, ":"):
			out = append(out, strings.Fields(l)[0]+" "+strings.Fields(l)[1])
		}
	}
	return out
}

// TestHost28Recorded: Host28 renders the recorded Docker 28.5.2 node's
// host rules (fixtures/swarm-vm28) exactly, but the encrypted overlay's
// (mangle OUTPUT's MARK and filter INPUT's DROP of cleartext VXLAN, which
// are not the routing mesh's).
func TestHost28Recorded(t *testing.T) {
	b, err := os.ReadFile("../../fixtures/swarm-vm28/collect/netns/host/iptables-save.txt")
	if err != nil {
		t.Fatal(err)
	}
	rec := string(b)
	var eps []netip.Addr
	for _, m := range regexp.MustCompile(`-A PREROUTING -d (\S+)/32 ! -i docker_gwbridge -j DROP`).FindAllStringSubmatch(rec, -1) {
		eps = append(eps, netip.MustParseAddr(m[1]))
	}
	got := Host28("docker_gwbridge", netip.MustParsePrefix("172.18.0.0/16"), netip.MustParsePrefix("172.17.0.0/16"),
		netip.MustParseAddr("172.18.0.2"), eps, []Port{{Proto: "tcp", Published: 8080, Target: 80}})
	for _, table := range []string{"raw", "filter", "nat"} {
		want := slices.DeleteFunc(rulesOf(rec, table), func(l string) bool { return strings.Contains(l, "-m bpf") })
		if g := rulesOf(got, table); !slices.Equal(g, want) {
			t.Errorf("%s:\n got %q\nwant %q", table, g, want)
		}
	}
	if len(eps) != 8 {
		t.Fatalf("the recording changed: %d endpoints", len(eps))
	}
}
