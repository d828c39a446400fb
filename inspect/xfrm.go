package inspect

import (
	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/internal/safefile"
	"github.com/meshtrace/meshtrace/topology"
)

// The bundle files of a namespace's IPsec state (see readBundleXfrm).
const (
	BundleXfrmState  = "ip-xfrm-state.txt"
	BundleXfrmPolicy = "ip-xfrm-policy.txt"
)

// XfrmReader reads a namespace's xfrm SAs and policies, keys left out.
type XfrmReader interface {
	ReadXfrm(t *Target) (*topology.Xfrm, error)
}

// readBundleXfrm reads ip-xfrm-state.txt (`ip [-s] xfrm state [list
// nokeys]`, keys shown or hidden) and ip-xfrm-policy.txt (`ip [-s] xfrm
// policy`) into ns.Xfrm; either may be missing (its list stays nil: not
// collected), both missing leave ns.Xfrm nil. Lines not understood are
// errors of the namespace, naming file and line.
func readBundleXfrm(b *safefile.Dir, dir string, ns *topology.Namespace) error {
	x := &topology.Xfrm{}
	err := readLines(b, dir, BundleXfrmState, ns, parse.XfrmState, func(v []topology.XfrmState) { x.States = v })
	if err != nil {
		return err
	}
	err = readLines(b, dir, BundleXfrmPolicy, ns, parse.XfrmPolicy, func(v []topology.XfrmPolicy) { x.Policies = v })
	if err != nil {
		return err
	}
	if x.States != nil || x.Policies != nil {
		ns.Xfrm = x
	}
	return nil
}

// cmdXfrmState and cmdXfrmPolicy are what collect runs: the SAs with their
// counters and key lengths (-s), every key replaced by parse.RedactXfrmKeys
// before anything is written (`ip xfrm state list nokeys`, iproute2 5.1+,
// would hide the keys itself but drop their lengths, which the live reader
// has); the policies with -s, for their kernel index (which the live
// reader reads).
var (
	cmdXfrmState = collectCmd{file: BundleXfrmState, name: "ip", args: []string{"-s", "xfrm", "state"},
		filter: parse.RedactXfrmKeys}
	cmdXfrmPolicy = collectCmd{file: BundleXfrmPolicy, name: "ip", args: []string{"-s", "xfrm", "policy", "list"}}
)
