//go:build !linux

package source

import "errors"

// ErrNeedsLinux is what a live read says off Linux: the kernel state it
// reads (network namespaces, netlink, nf_tables, IPVS) is Linux's.
var ErrNeedsLinux = errors.New("reading a node live needs Linux (network namespaces, netlink): read a bundle with --from DIR, written on the node by `meshtrace collect DIR`")

func needLinux() error { return ErrNeedsLinux }
