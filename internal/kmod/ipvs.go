package kmod

import "errors"

// FamilyNotFound is the reason IPVS gives when ip_vs is there (or cannot be
// told apart from missing, on a kernel without a module loader) and generic
// netlink still has no family "IPVS".
const FamilyNotFound = `generic netlink family "IPVS" not found`

// IPVS is meshtrace's one check for the kernel's IPVS: the gate first, and
// only when ip_vs is present the generic netlink family lookup, family
// (which reports false, nil when the family does not exist; IPVSFamily
// does that on Linux). Asking for a missing family would load ip_vs (see
// NeedIPVS). Without IPVS, reason says why in words for a note:
// "ip_vs is not loaded (…)" or FamilyNotFound.
func IPVS(g Gate, family func() (bool, error)) (ok bool, reason string, err error) {
	if err := NeedIPVS.Check(g); err != nil {
		var ae *AbsentError
		errors.As(err, &ae)
		return false, ae.Reason(), nil
	}
	ok, err = family()
	switch {
	case err != nil:
		return false, "", err
	case !ok:
		return false, FamilyNotFound, nil
	}
	return true, "", nil
}
