package load

import (
	"context"
	"testing"

	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
)

// TestCheckSkip: what the check reads of each folder.
func TestCheckSkip(t *testing.T) {
	for _, c := range []struct {
		netns, file string
		skip        bool
	}{
		{"host", "ss.txt", true},
		{"host", "iptables-save.txt", false},
		{"host", "ip-route.txt", false},
		{"host", "ip-xfrm-state.txt", false},
		{"ingress_sbox", "ip-route.txt", true},
		{"ingress_sbox", "iptables-save.txt", false},
		{"ingress_sbox", "sysctl.txt", false},
		{"lb_ycfwnuijc", "iptables-mangle.txt", false},
		{"1-ycfwnuijco", "bridge-fdb.txt", false},
		{"1-ycfwnuijco", "ip-neigh.txt", false},
		{"d6706d6e5669", "iptables-save.txt", true},
		{"d6706d6e5669", "iptables-nat.txt", true},
		{"d6706d6e5669", "sysctl.txt", true},
		{"d6706d6e5669", "ip-addr.txt", false},
		{"d6706d6e5669", "ipvsadm.txt", false},
		{"D6706D6E5669", "iptables-save.txt", false},
	} {
		if got := checkSkip(c.netns, c.file); got != c.skip {
			t.Errorf("checkSkip(%s, %s) = %v, want %v", c.netns, c.file, got, c.skip)
		}
	}
}

// TestCheckComplete: a model read with checkSkip is complete for the check
// only when every folder it skipped a firewall of is a container's task
// and the ingress sandbox was found by an address.
func TestCheckComplete(t *testing.T) {
	read := func() *topology.Model {
		m, err := source.Load(context.Background(), source.Spec{Bundle: "../../fixtures/swarm-vm/node0", Skip: checkSkip})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := read()
	tasks := 0
	for _, ns := range m.Namespaces {
		if containerKey(ns.Name) {
			tasks++
		}
	}
	if tasks == 0 || !checkComplete(m) {
		t.Fatalf("swarm-vm node0 (%d tasks): complete %v, want true", tasks, checkComplete(m))
	}
	for name, spoil := range map[string]func(m *topology.Model){
		"a task without Docker's word": func(m *topology.Model) {
			for _, ns := range m.Namespaces {
				if containerKey(ns.Name) {
					ns.Docker = nil
					return
				}
			}
		},
		"a container's folder in a load balancer's role": func(m *topology.Model) {
			for _, ns := range m.Namespaces {
				if containerKey(ns.Name) {
					ns.Role = topology.RoleLB
					return
				}
			}
		},
		"no sandbox found by an address": func(m *topology.Model) {
			for _, ns := range m.Namespaces {
				if ns.Role == topology.RoleIngressSandbox {
					ns.Role = topology.RoleUnknown
				}
			}
		},
	} {
		m := read()
		spoil(m)
		if checkComplete(m) {
			t.Errorf("%s: complete, want not", name)
		}
	}
}
