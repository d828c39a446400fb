package mesh

import (
	"strings"
	"testing"
)

// The real fault kernel refuses every namespace that is not one of the
// mesh's own files, before touching anything: a tampered faults.json can
// not make repair write the root namespace's sysctls or rules.
func TestFaultKernelOnlyItsMesh(t *testing.T) {
	k, err := NewFaultKernel(&State{Name: "x", Dir: "/run/meshtrace/x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"/proc/1/ns/net", "", "/run/meshtrace/x", "/run/meshtrace/x/../y/node0/host", "/run/meshtrace/xy/node0/host", "relative"} {
		errs := []error{
			k.SetSysctl(ns, "net/ipv4/ip_forward", "0"),
			k.RestoreRules(ns, "filter", []string{"-P INPUT DROP"}),
			k.SetLink(ns, LinkOp{Name: "lo", MTU: 1500}),
			k.SetFDB(ns, FDBOp{Dev: "vxlan0", MAC: "02:42:0a:00:00:06", Delete: true}),
			k.IPVS(ns, IPVSOp{Op: IPVSDelService, FWMark: 256}),
		}
		_, e := k.SaveRules(ns, "nat")
		errs = append(errs, e)
		_, e = k.DeleteConntrack(ns, "udp", 5353)
		errs = append(errs, e)
		for i, err := range errs {
			if err == nil || !strings.Contains(err.Error(), "is not a namespace of mesh x") {
				t.Errorf("%q: call %d: %v", ns, i, err)
			}
		}
	}
}
