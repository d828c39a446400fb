package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/meshtrace/meshtrace/inspect/nft"
	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/topology"
)

// kernelFirewall reads rulesets with the nf_tables reader (package nft) or
// by running iptables-save -c inside the namespace.
type kernelFirewall struct{}

var _ FirewallReader = kernelFirewall{}

// nftRead is nft.Read, a variable so a build without it still links.
var nftRead = nft.Read

func (kernelFirewall) ReadNetlink(t *Target) (*topology.Firewall, error) {
	return nftRead(t.Path)
}

// ReadExec runs iptables-save -c in t and parses its output; errors and
// unparsed lines name "netns NAME: iptables-save". For backend "legacy"
// iptables-legacy-save is preferred when installed: on a host whose
// iptables is the nf_tables variant, plain iptables-save does not show
// legacy tables, it only warns that they exist. On that warning a
// namespace with no nf_tables rules is read again with
// iptables-legacy-save; one with both keeps the warning in Unparsed.
func (kernelFirewall) ReadExec(t *Target, backend string) (*topology.Firewall, error) {
	file := fmt.Sprintf("netns %s: iptables-save", t.Name)
	bin := "iptables-save"
	legacyBin, lerr := exec.LookPath("iptables-legacy-save")
	if backend == "legacy" && lerr == nil {
		bin = legacyBin
	}
	out, stderr, err := saveIn(t, bin)
	if err != nil {
		return nil, err
	}
	fw, err := parse.IptablesSave(file, bytes.NewReader(out))
	if err != nil {
		return nil, err
	}
	if warn := legacyWarning(stderr); warn != "" {
		if len(fw.Tables) == 0 && lerr == nil {
			return readLegacy(t, file, legacyBin)
		}
		fw.Unparsed = append(fw.Unparsed, topology.Unparsed{File: file, Text: warn,
			Reason: "legacy x_tables rules are present too; iptables-save (nf_tables) does not show them"})
	}
	if fw.Backend == "" && backend != "" {
		fw.Backend = backend
	}
	return fw, nil
}

func readLegacy(t *Target, file, bin string) (*topology.Firewall, error) {
	out, _, err := saveIn(t, bin)
	if err != nil {
		return nil, err
	}
	fw, err := parse.IptablesSave(file, bytes.NewReader(out))
	if err != nil {
		return nil, err
	}
	fw.Backend = "legacy"
	return fw, nil
}

// saveIn runs `bin -c` inside t and returns its stdout and stderr.
func saveIn(t *Target, bin string) ([]byte, []byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-c")
	cmd.Stderr = &stderr
	out, err := netnsx.Output(t.Path, cmd)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, nil, fmt.Errorf("%s -c: %w: %s", bin, err, strings.TrimSpace(stderr.String()))
		}
		return nil, nil, fmt.Errorf("%s -c: %w", bin, err)
	}
	return out, stderr.Bytes(), nil
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
