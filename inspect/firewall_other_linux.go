package inspect

import (
	"fmt"
	"os/exec"

	"github.com/meshtrace/meshtrace/topology"
)

var _ LegacyReader = kernelFirewall{}

// ReadLegacy runs iptables-legacy-save -c in t (see cmdIptablesOther for
// why it loads nothing); without it installed there is nothing to run:
// iptables-save may be the nf_tables variant, which shows legacy tables
// only as a warning.
func (k kernelFirewall) ReadLegacy(t *Target) (*topology.Firewall, string, error) {
	look := k.look
	if look == nil {
		look = exec.LookPath
	}
	bin, err := look("iptables-legacy-save")
	if err != nil {
		return nil, fmt.Sprintf("netns %s: the legacy iptables backend holds tables too, not read: iptables-legacy-save is not installed", t.Name), nil
	}
	fw, err := k.readLegacy(t, fmt.Sprintf("netns %s: iptables-legacy-save", t.Name), bin)
	return fw, "", err
}
