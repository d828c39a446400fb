package parse

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
)

// fixtureRoots are the directories of recorded command output the tests
// walk: ours (fixtures/cmdout, see its README) and the real Swarm VMs'
// (fixtures/swarm-vm, fixtures/swarm-vm2), whenever they exist.
var fixtureRoots = []string{
	filepath.Join("..", "..", "fixtures", "cmdout"),
	filepath.Join("..", "..", "fixtures", "swarm-vm"),
	filepath.Join("..", "..", "fixtures", "swarm-vm2"),
}

// fixtureSuffixes are the kinds of the fixtures named as a bundle's files
// (or ending so), checked before the older names below.
var fixtureSuffixes = []struct{ suffix, kind string }{
	{"ipvsadm-timeout.txt", "ipvstimeout"}, {"ip-route.txt", "iproute"}, {"ip-neigh.txt", "ipneigh"},
	{"bridge-fdb.txt", "fdb"}, {"sysctl.txt", "sysctl"}, {"ss.txt", "ss"}, {"conntrack.txt", "conntrack"},
	{"ip-addr.txt", "ipaddr"}, {"ip-d-addr.txt", "ipaddr"},
	{"ip-xfrm-state.txt", "xfrmstate"}, {"ip-xfrm-policy.txt", "xfrmpolicy"}, {"snmp.txt", "snmp"}, {"netstat.txt", "snmp"},
	{"nf_conntrack-stat.txt", "ctstat"}, {"ip-stats.txt", "linkstats"},
}

// fixtureKind classifies a fixture file by its name.
func fixtureKind(name string) string {
	if !strings.HasSuffix(name, ".txt") {
		return ""
	}
	for _, s := range fixtureSuffixes {
		if strings.HasSuffix(name, s.suffix) {
			return s.kind
		}
	}
	for _, t := range topology.IptablesTables {
		if name == "iptables-"+t.Name+".txt" {
			return "iptables-table" // a listing: fixtures/cmdout/listings
		}
	}
	switch {
	case strings.Contains(name, "iptables-save"):
		return "iptables"
	case strings.HasPrefix(name, "ipvsadm"):
		return "ipvsadm"
	}
	return ""
}

// fixtures returns the fixture files of one kind. Our own fixtures must be
// there: a missing directory is a failure, not a silent pass.
func fixtures(t testing.TB, kind string) []string {
	t.Helper()
	var out []string
	for i, root := range fixtureRoots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && fixtureKind(d.Name()) == kind {
				out = append(out, path)
			}
			return nil
		})
		if err != nil && (i == 0 || !os.IsNotExist(err)) {
			t.Fatalf("walk %s: %v", root, err)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s fixtures under %v", kind, fixtureRoots)
	}
	return out
}

func readFixture(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func cmdout(parts ...string) string {
	return filepath.Join(append([]string{fixtureRoots[0]}, parts...)...)
}
