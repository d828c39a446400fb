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

// HostIPVS is IPVS asked from the caller's namespace (the IPVS family is
// netnsok: every namespace sees the same): the gate g (nil: Host()), then
// the family lookup. Without IPVS, or when the lookup fails, reason says
// why ("generic netlink family IPVS: ERROR" for a failure).
func HostIPVS(g Gate) (ok bool, reason string) {
	if g == nil {
		g = Host()
	}
	ok, reason, err := IPVS(g, func() (bool, error) { return IPVSFamily(netlink.GenlFamilyGet) })
	if err != nil {
		return false, "generic netlink family IPVS: " + err.Error()
	}
	return ok, reason
}
