package inspect

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// Both iptables backends. iptables writes rules either into nf_tables
// (iptables-nft) or into the legacy x_tables (iptables-legacy), and a node
// can hold both at once (Docker writing with one, a host firewall or an
// older tool with the other): the kernel runs both on every packet. The
// model's Firewall is the backend meshtrace evaluates (nf_tables when it
// holds iptables tables, else legacy), OtherFirewall the other backend's
// rules, so that a split (Docker's rules in one, rules for the same packets
// in the other) shows.
//
// Only the legacy backend can be the other one: a namespace whose
// iptables rules are all legacy has no iptables-nft table (that is how the
// nf_tables reader decides it, nft.ErrLegacy). Native nf_tables tables
// that iptables did not write (nft's own, firewalld's) are not iptables
// rules and not read.

// BundleIptablesLegacy is the bundle file of the legacy backend's rules
// where they are not the namespace's iptables-save.txt: `iptables-legacy-save
// -c`, written only where it printed something.
const BundleIptablesLegacy = "iptables-legacy-save.txt"

// cmdIptablesOther is what collect runs for it. iptables-legacy-save loads
// nothing: it lists the tables /proc/net/ip_tables_names names, and there
// are none unless ip_tables is loaded (iptables/iptables-save.c,
// for_each_table: a missing file is no table; a table it lists is loaded).
var cmdIptablesOther = collectCmd{file: BundleIptablesLegacy, name: "iptables-legacy-save", args: []string{"-c"}, skipEmpty: true}

// LegacyReader reads a namespace's legacy x_tables rules alone, whatever
// variant plain iptables-save is; the real FirewallReader implements it.
type LegacyReader interface {
	// ReadLegacy returns nil, nil when it cannot (iptables-legacy-save is
	// not installed), with the reason in note.
	ReadLegacy(t *Target) (fw *topology.Firewall, note string, err error)
}

// legacyMarker reports whether fw, read from nf_tables, says legacy tables
// are present too: the nf_tables reader and iptables-nft-save each report
// them among the Unparsed (nft.Decode: File "x_tables"; ReadExec: the
// warning iptables-nft-save prints). It returns the entry's index.
func legacyMarker(fw *topology.Firewall) (int, bool) {
	for i, u := range fw.Unparsed {
		if (u.File == "x_tables" && strings.HasPrefix(u.Text, "legacy tables: ")) || legacyWarning([]byte(u.Text)) != "" {
			return i, true
		}
	}
	return 0, false
}

// readOtherFirewall reads the legacy rules of a namespace whose Firewall fw
// was read from nf_tables and says legacy tables are present too. The
// marker in fw.Unparsed then goes: those rules are part of the model now.
// It returns nil where there is no other backend to read.
func readOtherFirewall(r FirewallReader, t *Target, fw *topology.Firewall) (*topology.Firewall, string, error) {
	if fw == nil || fw.Backend == "legacy" {
		return nil, "", nil
	}
	i, ok := legacyMarker(fw)
	if !ok {
		return nil, "", nil
	}
	lr, ok := r.(LegacyReader)
	if !ok {
		return nil, fmt.Sprintf("netns %s: the legacy iptables backend holds tables too; this reader cannot read them", t.Name), nil
	}
	other, note, err := lr.ReadLegacy(t)
	if err != nil || other == nil {
		return nil, note, err
	}
	other.Backend = "legacy"
	fw.Unparsed = slices.Delete(fw.Unparsed, i, i+1)
	return other, note, nil
}

// legacyWarning returns the "# Warning: iptables-legacy tables present"
// line iptables-nft-save prints on stderr, or "".
func legacyWarning(out []byte) string {
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "# Warning:") && strings.Contains(line, "iptables-legacy tables present") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
