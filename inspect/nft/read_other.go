//go:build !linux

package nft

import (
	"errors"

	"github.com/meshtrace/meshtrace/topology"
)

// errNotLinux: nf_tables is Linux's.
var errNotLinux = errors.New("reading nf_tables needs Linux")

// Read is the Linux reader's stand-in: nf_tables exists only there.
func Read(string) (*topology.Firewall, error) { return nil, errNotLinux }
