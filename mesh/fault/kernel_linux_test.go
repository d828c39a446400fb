package fault

import (
	"net/netip"
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
			k.Legacy.RestoreRules(ns, "filter", []string{":FORWARD DROP [0:0]"}),
			k.Routing.SetAddr(ns, AddrOp{Dev: "eth0", Prefix: netip.MustParsePrefix("192.168.77.254/32")}),
			k.Routing.SetRoute(ns, RouteOp{Dst: netip.MustParsePrefix("10.0.0.0/16"), Dev: "eth0"}),
			k.Overlay.SetNeigh(ns, NeighOp{Dev: "vxlan0", IP: netip.MustParseAddr("10.0.0.7"), MAC: "02:42:0a:00:00:fe"}),
			k.NIC.SetTxChecksum(ns, "eth0", false),
			k.NIC.SetBadChecksum(ns, "eth0", true),
		}
		_, e0 := k.Legacy.SaveRules(ns, "filter")
		_, e1 := k.Routing.Addrs(ns, "eth0")
		_, e2 := k.Routing.Routes(ns)
		_, e3 := k.Overlay.Neigh(ns, "vxlan0", netip.MustParseAddr("10.0.0.7"))
		_, e4 := k.NIC.TxChecksum(ns, "eth0")
		_, e5 := k.NIC.Clsact(ns, "eth0")
		errs = append(errs, e0, e1, e2, e3, e4, e5)
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
