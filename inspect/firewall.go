package inspect

import (
	"errors"
	"fmt"

	"github.com/meshtrace/meshtrace/inspect/nft"
	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/topology"
)

// readFirewall reads t's ruleset the way mode says. In auto mode the
// in-process nf_tables reader goes first; a legacy-backend namespace
// (nft.ErrLegacy) is read with iptables-save instead, which is normal, and
// so is a kernel without nf_tables loaded (the module gate stopped the
// reader: every rule there is is a legacy one); any other failure of the
// nf_tables reader also falls back, with a note saying so. The returned
// Firewall is nil when nothing could be read; a read the module gate
// stopped returns the gate's error alone.
func readFirewall(r FirewallReader, t *Target, mode string) (fw *topology.Firewall, note string, err error) {
	switch mode {
	case FirewallExec:
		fw, err = r.ReadExec(t, "")
		return fw, "", err
	case FirewallNetlink:
		fw, err = r.ReadNetlink(t)
		return fw, "", err
	}
	fw, nerr := r.ReadNetlink(t)
	if nerr == nil {
		return fw, "", nil
	}
	var absent *kmod.AbsentError
	legacy := errors.Is(nerr, nft.ErrLegacy) || errors.As(nerr, &absent)
	backend := ""
	if legacy {
		backend = "legacy"
	}
	fw, err = r.ReadExec(t, backend)
	if errors.As(err, &absent) {
		return nil, "", err
	}
	if err != nil {
		return nil, "", fmt.Errorf("nf_tables: %w; iptables-save: %w", nerr, err)
	}
	if legacy && fw.Backend == "" {
		fw.Backend = "legacy"
	}
	if !legacy {
		note = fmt.Sprintf("netns %s: the nf_tables reader failed (%v); its firewall was read with iptables-save", t.Name, nerr)
	}
	return fw, note, nil
}
