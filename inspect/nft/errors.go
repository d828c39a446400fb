// Package nft reads a network namespace's IPv4 iptables ruleset straight
// from the kernel's nf_tables over netlink (github.com/google/nftables),
// without exec'ing iptables-save, and decodes what iptables-nft (1.8.x)
// wrote there — native payload/meta/cmp expressions and xtables-compat
// match/target expressions — into the same topology.Firewall that parsing
// `iptables-save -c` gives.
//
// The netlink reading lives in *_linux.go; the decoding is pure (a Dump in,
// a Firewall out) and tested without root, but it is built on Linux only:
// github.com/google/nftables/expr builds nowhere else. Off Linux, Read says
// it needs Linux.
package nft

import (
	"errors"
	"fmt"
	"strings"
)

// ErrLegacy is returned (wrapped in *LegacyError) when a namespace has no
// iptables-nft tables but legacy x_tables ones: the caller must fall back to
// exec'ing iptables-save there. Test with errors.Is(err, ErrLegacy).
var ErrLegacy = errors.New("iptables rules are in the legacy x_tables backend")

// LegacyError names the namespace and the legacy tables found.
type LegacyError struct {
	NetNS  string
	Tables []string
}

func (e *LegacyError) Error() string {
	ns := e.NetNS
	if ns == "" {
		ns = "current netns"
	}
	return fmt.Sprintf("nft: %s: %v (tables %s)", ns, ErrLegacy, strings.Join(e.Tables, ","))
}

func (e *LegacyError) Unwrap() error { return ErrLegacy }
