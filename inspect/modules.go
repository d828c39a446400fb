package inspect

import (
	"errors"
	"strings"

	"github.com/meshtrace/meshtrace/internal/kmod"
)

// Reading changes nothing on the node, and that includes its modules:
// before a request that would make the kernel load a missing module (the
// needs of package kmod: a generic netlink lookup of IPVS, nf_tables and
// ctnetlink dumps, sock_diag requests, and the commands collect runs that
// make them), the real readers and collect ask the module gate
// (Options.Modules, CollectOptions.Modules). What the gate stops is not
// collected, never empty, with a note saying which module is missing.

// gate is t's module gate: Live's, or the host's for a Target made
// elsewhere.
func (t *Target) gate() kmod.Gate {
	if t.mods == nil {
		t.mods = kmod.Host()
	}
	return t.mods
}

// skipped reports whether err is a read the module gate stopped, and the
// note that says so. The note names no namespace: the module is missing
// node-wide, and collectNotes keeps one line for the node.
func skipped(err error) (string, bool) {
	var ae *kmod.AbsentError
	if errors.As(err, &ae) {
		return ae.Error(), true
	}
	return "", false
}

// nftVariant reads `iptables-save -V`: iptables 1.8 prints "iptables-save
// v1.8.9 (nf_tables)" or "(legacy)"; before 1.8 every iptables was legacy
// ("iptables-save v1.6.1"). The flag is handled before iptables opens any
// socket (xtables-save.c and iptables-save.c exit in option parsing), so
// asking loads nothing.
func nftVariant(version []byte) bool {
	return strings.Contains(string(version), "(nf_tables)")
}
