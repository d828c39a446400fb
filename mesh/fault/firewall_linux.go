package fault

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/mesh"
)

// firewall runs iptables-save and iptables-restore inside the namespace.
type firewall struct{ meshOnly }

var _ Firewall = firewall{}

func (k firewall) SaveRules(netns, table string) (string, error) {
	if err := k.mine(netns); err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd := exec.Command("iptables-save", "-t", table)
	cmd.Stderr = &stderr
	out, err := netnsx.Output(netns, cmd)
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func (k firewall) RestoreRules(netns, table string, lines []string) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	return mesh.Restore(netns, "*"+table+"\n"+strings.Join(lines, "\n")+"\nCOMMIT\n", "--noflush")
}
