package kmod

import (
	"errors"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// IPVSFamily asks generic netlink, through get (netlink.GenlFamilyGet, in
// the caller's namespace, or a namespace's Handle.GenlFamilyGet: the IPVS
// family is netnsok, so every namespace sees the same), whether the family
// "IPVS" exists. Use it as IPVS's family, behind the gate: asking for a
// missing family loads ip_vs.
func IPVSFamily(get func(name string) (*netlink.GenlFamily, error)) (bool, error) {
	_, err := get("IPVS")
	if errors.Is(err, unix.ENOENT) || errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
