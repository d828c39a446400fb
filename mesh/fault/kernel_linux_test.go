package fault

import (
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/mesh"
)

// The real fault kernel refuses every namespace that is not one of the
// mesh's own files, before touching anything: a tampered faults.json can
// not make repair write the root namespace's sysctls or rules.
func TestKernelOnlyItsMesh(t *testing.T) {
	k, err := NewKernel(&mesh.State{Name: "x", Dir: "/run/meshtrace/x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"/proc/1/ns/net", "", "/run/meshtrace/x", "/run/meshtrace/x/../y/node0/host", "/run/meshtrace/xy/node0/host", "relative"} {
		errs := []error{
			k.Sysctls.SetSysctl(ns, "net/ipv4/ip_forward", "0"),
			k.Firewall.RestoreRules(ns, "filter", []string{"-P INPUT DROP"}),
			k.Links.SetLink(ns, LinkOp{Name: "lo", MTU: 1500}),
			k.Overlay.SetFDB(ns, FDBOp{Dev: "vxlan0", MAC: "02:42:0a:00:00:06", Delete: true}),
			k.LB.IPVS(ns, IPVSOp{Op: IPVSDelService, FWMark: 256}),
		}
		_, e := k.Firewall.SaveRules(ns, "nat")
		errs = append(errs, e)
		_, e = k.Conntrack.DeleteConntrack(ns, "udp", 5353)
		errs = append(errs, e)
		_, e = k.Traffic.Send(ns, "udp", "192.168.77.10:5353", 20000)
		errs = append(errs, e)
		_, e = k.Sysctls.Sysctl(ns, "net/ipv4/ip_forward")
		errs = append(errs, e)
		_, e = k.Links.Link(ns, "lo")
		errs = append(errs, e)
		_, e = k.Overlay.FDB(ns, "vxlan0")
		errs = append(errs, e)
		_, e = k.LB.IPVSServices(ns)
		errs = append(errs, e)
		for i, err := range errs {
			if err == nil || !strings.Contains(err.Error(), "is not a namespace of mesh x") {
				t.Errorf("%q: call %d: %v", ns, i, err)
			}
		}
	}
}
