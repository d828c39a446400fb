package inspect

import (
	"io"
	"path"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/internal/safefile"
	"github.com/meshtrace/meshtrace/topology"
)

// readBundleExtra reads what a namespace folder holds beyond readBundleState:
// the legacy backend's rules (iptables-legacy-save.txt), the xfrm SAs and
// policies (readBundleXfrm) and the counters (readBundleCounters).
func readBundleExtra(b *safefile.Dir, dir string, ns *topology.Namespace) error {
	_, err := parseFile(b, path.Join(dir, BundleIptablesLegacy), func(file string, r io.Reader) (e error) {
		ns.OtherFirewall, e = parse.IptablesSave(file, r)
		if e == nil && ns.OtherFirewall.Backend == "" {
			ns.OtherFirewall.Backend = "legacy"
		}
		return e
	})
	if err != nil {
		return err
	}
	if err := readBundleXfrm(b, dir, ns); err != nil {
		return err
	}
	return readBundleCounters(b, dir, ns)
}
