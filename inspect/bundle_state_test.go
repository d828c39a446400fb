package inspect

import (
	stdcmp "cmp"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshtrace/meshtrace/topology"
)

// TestBundleStateMesh reads a mesh node recorded with every file collect
// writes (fixtures/cmdout/mesh-state, record-state.sh) and checks what the
// optional files give each namespace, as the live reader would have it.
func TestBundleStateMesh(t *testing.T) {
	m, err := Bundle(filepath.Join("..", "fixtures", "cmdout", "mesh-state", "node0"))
	if err != nil {
		t.Fatal(err)
	}
	topology.Classify(m)
	roles := map[topology.Role]int{}
	for _, ns := range m.Namespaces {
		roles[ns.Role]++
		if len(ns.Errors) > 0 {
			t.Errorf("netns %s: errors %q", ns.Name, ns.Errors)
		}
		if ns.Routes == nil || ns.Neighbours == nil || ns.FDB == nil || ns.Sysctls == nil || ns.Sockets == nil || ns.Conntrack == nil {
			t.Errorf("netns %s: a state file read as not collected", ns.Name)
		}
		for k := range ns.Sysctls {
			if !modelledSysctl(k) || strings.Contains(k, ".default.") {
				t.Errorf("netns %s: sysctl %s kept", ns.Name, k)
			}
		}
		for _, l := range ns.Links {
			if ns.Sysctls["net.ipv4.conf."+l.Name+".rp_filter"] == "" {
				t.Errorf("netns %s: no rp_filter of link %s", ns.Name, l.Name)
			}
		}
		for _, e := range ns.FDB {
			mac := e.MAC.HardwareAddr()
			l := ns.Link(e.Dev)
			if mac[0]&1 == 1 || l == nil || (e.Dst.IsValid() && l.Kind != "vxlan") {
				t.Errorf("netns %s: fdb entry %+v kept", ns.Name, e)
			}
		}
		if !slices.IsSortedFunc(ns.Sockets, func(a, b topology.Socket) int {
			return stdcmp.Or(strings.Compare(a.Proto, b.Proto), a.Addr.Compare(b.Addr), stdcmp.Compare(a.Port, b.Port))
		}) {
			t.Errorf("netns %s: sockets not sorted: %v", ns.Name, ns.Sockets)
		}
		if ns.Role == topology.RoleOverlay && len(vxlanDsts(ns)) == 0 {
			t.Errorf("overlay %s: no FDB entry with a remote VTEP", ns.Name)
		}
	}
	if d := cmp.Diff(map[topology.Role]int{topology.RoleHost: 1, topology.RoleIngressSandbox: 1, topology.RoleOverlay: 1, topology.RoleTask: 2}, roles); d != "" {
		t.Errorf("roles (-want +got):\n%s", d)
	}
}

// addrText is a's text, "" for none.
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func vxlanDsts(ns *topology.Namespace) []string {
	var out []string
	for _, e := range ns.FDB {
		if e.Dst.IsValid() {
			out = append(out, e.Dev+" "+e.MAC.String()+" "+e.Dst.String())
		}
	}
	return out
}

// TestBundleStateVariants: the FDB entries kept of a bridge port, a
// bridge and a VXLAN device; a link whose name has a dot; sysctl -a
// output narrowed to what the live reader reads.
func TestBundleStateVariants(t *testing.T) {
	files := map[string]string{}
	for _, f := range []string{BundleIPAddr, BundleFDB, BundleRoutes, BundleNeigh, BundleSockets, BundleConntrack} {
		files["netns/host/"+f] = cmdoutFile(t, "state-variants/"+f)
	}
	files["netns/host/"+BundleSysctl] = cmdoutFile(t, "state-variants/net-sysctl.txt") // `sysctl net`: every knob
	m, err := Bundle(writeBundle(t, files))
	if err != nil {
		t.Fatal(err)
	}
	h := m.Namespaces[0]
	if len(h.Errors) > 0 {
		t.Errorf("errors %q", h.Errors)
	}
	var kept []string
	for _, e := range h.FDB {
		if mac := e.MAC.String(); strings.HasPrefix(mac, "02:42:") || mac == "00:00:00:00:00:00" {
			kept = append(kept, mac+" "+e.Dev+" "+addrText(e.Dst)+" "+e.State)
		}
	}
	want := []string{"02:42:0a:09:00:0c d1  reachable", "02:42:0a:09:00:0b d1  noarp",
		"02:42:0a:09:00:0a vx9 10.9.0.3 permanent", "00:00:00:00:00:00 vx9 10.9.0.2 permanent"}
	if d := cmp.Diff(want, kept); d != "" {
		t.Errorf("fdb (-want +got):\n%s", d)
	}
	// The bridge's own and its ports' entries (random MACs, permanent);
	// d0, d3, d4, d5 and eth0.5 are no bridge port: nothing of theirs.
	for _, e := range h.FDB {
		if e.Dev != "d1" && e.Dev != "vx9" && e.Dev != "br9" {
			t.Errorf("fdb entry of %s kept: %+v", e.Dev, e)
		}
	}
	for k, v := range map[string]string{"net.ipv4.conf.eth0.5.rp_filter": "2", "net.ipv4.conf.d0.rp_filter": "1",
		"net.ipv4.conf.all.route_localnet": "1", "net.ipv4.ip_forward": "0"} {
		if h.Sysctls[k] != v {
			t.Errorf("sysctl %s = %q, want %q", k, h.Sysctls[k], v)
		}
	}
	if n := len(h.Links)*len(devconfKnobs) + 6; len(h.Sysctls) != n {
		t.Errorf("%d sysctls kept of `sysctl net`, want %d (links' knobs, all's, forwarding, conntrack, bridge)", len(h.Sysctls), n)
	}
}

// TestBundleStateLines: a missing file is "not collected", an empty one
// "nothing there"; lines not understood are the namespace's errors; a
// file that is another command's output fails the read naming it.
func TestBundleStateLines(t *testing.T) {
	dir := writeBundle(t, map[string]string{
		"netns/host/" + BundleIPAddr:      cmdoutFile(t, "state-variants/ip-addr.txt"),
		"netns/host/" + BundleRoutes:      "default via 10.9.0.1 dev d0\nbanana\n",
		"netns/host/" + BundleConntrack:   "",
		"netns/host/" + BundleIPVSTimeout: "Timeout (tcp tcpfin udp): 900 120 300\n",
	})
	m, err := Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := m.Namespaces[0]
	if h.Neighbours != nil || h.FDB != nil || h.Sysctls != nil || h.Sockets != nil || h.Conntrack == nil || len(h.Conntrack) != 0 {
		t.Errorf("not collected must be nil, empty must be empty: %+v", h)
	}
	file := filepath.Join(dir, "netns", "host")
	want := []string{
		filepath.Join(file, BundleRoutes) + `:2: not understood (bad destination "banana"): "banana"`,
		filepath.Join(file, BundleIPVSTimeout) + ": IPVS timeouts without an IPVS table (ipvsadm.txt): not kept",
	}
	if d := cmp.Diff(want, h.Errors); d != "" || len(h.Routes) != 1 {
		t.Errorf("routes %v, errors (-want +got):\n%s", h.Routes, d)
	}

	dir = writeBundle(t, map[string]string{
		"netns/host/" + BundleIPAddr:      cmdoutFile(t, "state-variants/ip-addr.txt"),
		"netns/host/" + BundleIPVS:        "",
		"netns/host/" + BundleIPVSTimeout: "Timeout (tcp tcpfin udp): 900 120 300\n",
		"netns/host/" + BundleSockets:     cmdoutFile(t, "state-variants/ip-addr.txt"),
	})
	_, err = Bundle(dir)
	if err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "netns", "host", BundleSockets)+":1: not ss output") {
		t.Errorf("ip addr output as ss.txt: %v", err)
	}
}
