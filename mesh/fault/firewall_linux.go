package fault

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/mesh"
)

// firewall runs iptables-save and iptables-restore inside the namespace
// (legacy: their iptables-legacy twins).
type firewall struct {
	meshOnly
	legacy bool
}

var _ Firewall = firewall{}

func (k firewall) SaveRules(netns, table string) (string, error) {
	if err := k.mine(netns); err != nil {
		return "", err
	}
	save := "iptables-save"
	if k.legacy {
		// Asking x_tables for a table it has no instance of in this
		// namespace creates one: read the namespace's list of tables
		// first, and an absent table is an empty one.
		var names []byte
		err := netnsx.Do(netns, func() (err error) {
			names, err = os.ReadFile("/proc/thread-self/net/ip_tables_names")
			return err
		})
		if err != nil {
			return "", fmt.Errorf("legacy tables: %w", err)
		}
		if !slices.Contains(strings.Fields(string(names)), table) {
			return "", nil
		}
		save = "iptables-legacy-save"
	}
	var stderr bytes.Buffer
	cmd := exec.Command(save, "-t", table)
	cmd.Stderr = &stderr
	out, err := netnsx.Output(netns, cmd)
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", save, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func (k firewall) RestoreRules(netns, table string, lines []string) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	in := "*" + table + "\n" + strings.Join(lines, "\n") + "\nCOMMIT\n"
	if k.legacy {
		return mesh.RestoreLegacy(netns, in, "--noflush")
	}
	return mesh.Restore(netns, in, "--noflush")
}
