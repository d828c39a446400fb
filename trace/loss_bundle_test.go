package trace

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/topology"
)

// TestLossCountersCollected: every counter attribution reads is in what
// `meshtrace collect` writes (a recorded bundle of a real swarm node:
// snmp.txt, netstat.txt, nf_conntrack-stat.txt, ip-stats.txt), so a
// bundle diff (meshtrace diff) and a live trace see the same counters.
func TestLossCountersCollected(t *testing.T) {
	dir := filepath.Join("..", "fixtures", "swarm-vm28-xfrm", "node0", "collect", "netns", "host")
	open := func(name string) *os.File {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	snmp := map[string]int64{}
	for _, name := range []string{"snmp.txt", "netstat.txt"} {
		v, bad, err := parse.SNMP(name, open(name))
		if err != nil || len(bad) > 0 {
			t.Fatalf("%s: %v %v", name, err, bad)
		}
		for k, n := range v {
			snmp[k] = n
		}
	}
	for _, name := range append(keys(snmpCodes), "TcpOutRsts", "IcmpOutDestUnreachs") {
		if _, ok := snmp[name]; !ok {
			t.Errorf("%s is not in the bundle's snmp.txt or netstat.txt", name)
		}
	}
	ct, _, err := parse.ConntrackStat("nf_conntrack-stat.txt", open("nf_conntrack-stat.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"insert_failed", "drop"} {
		if _, ok := ct[name]; !ok {
			t.Errorf("conntrack %s is not in the bundle", name)
		}
	}
	links, _, err := parse.IPLinkStats("ip-stats.txt", open("ip-stats.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var lo topology.LinkCounters
	for _, lc := range links {
		lo = lc
		break
	}
	for _, name := range linkDrops {
		if _, ok := lo[name]; !ok {
			t.Errorf("link counter %s is not in the bundle's ip-stats.txt", name)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
