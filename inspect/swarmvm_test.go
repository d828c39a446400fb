package inspect

import (
	"net/netip"
	"sort"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
)

// TestSwarmVMBundleAgreesWithDocker reads the bundle recorded from a real
// swarm node (scripts/swarm-vm record: dockerd 20.10, kernel 6.1 with
// IPVS) and checks meshtrace's answers against what dockerd itself says in
// the same bundle's docker/*.json: every published port's path is complete
// and balances over exactly the service's tasks, the ingress sandbox is the
// namespace owning dockerd's ingress-sbox endpoint, each VIP leads to its
// service's tasks. Nothing is compared with strings copied from a run.
func TestSwarmVMBundleAgreesWithDocker(t *testing.T) {
	m, err := Bundle("../fixtures/swarm-vm/node0")
	if err != nil {
		t.Fatal(err)
	}
	topology.AnnotateDocker(m) // as the loading path (package source) does
	topology.Classify(m)
	d := m.Docker
	if d == nil || len(d.Services) == 0 {
		t.Fatal("the bundle carries no docker metadata")
	}
	// task IPs per service and network, from docker inspect.
	tasks := map[string]map[string][]string{}
	for _, c := range d.Containers {
		for net, ip := range c.Networks {
			if tasks[c.Service] == nil {
				tasks[c.Service] = map[string][]string{}
			}
			tasks[c.Service][net] = append(tasks[c.Service][net], ip.String())
		}
	}
	netName := map[string]string{}
	var ingressSbox string
	for _, n := range d.Networks {
		netName[n.ID] = n.Name
		if n.Ingress {
			ingressSbox = n.Endpoints[topology.IngressSandboxEndpoint].String()
		}
	}
	sb, err := netip.ParseAddr(ingressSbox)
	if err != nil {
		t.Fatalf("docker names no ingress-sbox endpoint: %q", ingressSbox)
	}
	owner := m.Owner(sb)
	if owner == nil || owner.Role != topology.RoleIngressSandbox {
		t.Fatalf("ingress-sbox %s: owner %v", sb, owner)
	}
	checked := 0
	for _, s := range d.Services {
		for _, p := range s.Ports {
			if p.Mode != "ingress" {
				continue
			}
			path, err := topology.FindPath(m, topology.Query{Proto: p.Proto, Port: p.Published})
			if err != nil {
				t.Fatalf("service %s %s/%d: %v", s.Name, p.Proto, p.Published, err)
			}
			if !path.Complete {
				t.Errorf("service %s %s/%d: path broken: %+v", s.Name, p.Proto, p.Published, path.Hops)
			}
			var got []string
			for _, b := range path.Backends {
				got = append(got, b.IP.String())
				if b.TargetPort != p.Target {
					t.Errorf("service %s backend %s serves %d, docker says target %d", s.Name, b.IP, b.TargetPort, p.Target)
				}
				if b.Netns == nil || m.Lookup(*b.Netns).Docker == nil || m.Lookup(*b.Netns).Docker.Service != s.Name {
					t.Errorf("service %s backend %s is not in one of its task namespaces", s.Name, b.IP)
				}
			}
			if !sameSet(got, tasks[s.Name]["ingress"]) {
				t.Errorf("service %s %s/%d balances over %v, docker's tasks on ingress are %v", s.Name, p.Proto, p.Published, got, tasks[s.Name]["ingress"])
			}
			for _, h := range path.Hops {
				if (h.Kind == topology.HopMark || h.Kind == topology.HopIPVS || h.Kind == topology.HopSNAT) && h.Netns != owner.Name {
					t.Errorf("service %s: %s hop in %s, the ingress sandbox is %s", s.Name, h.Kind, h.Netns, owner.Name)
				}
			}
			checked++
		}
		// Every VIP: from a task of another service on that network, the
		// call reaches exactly this service's tasks there.
		for netID, cidr := range s.VIPs {
			name := netName[netID]
			if name == "ingress" {
				continue
			}
			vip := cidr.Addr()
			from := callerOn(m, name, s.Name)
			if from == "" {
				t.Fatalf("no other task on network %s to call %s from", name, s.Name)
			}
			path, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 80, VIP: vip, Netns: from})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range path.Backends {
				got = append(got, b.IP.String())
			}
			if !path.Complete || !sameSet(got, tasks[s.Name][name]) {
				t.Errorf("VIP %s of %s from %s: complete %v backends %v, docker's tasks on %s are %v", vip, s.Name, from, path.Complete, got, name, tasks[s.Name][name])
			}
			checked++
		}
	}
	if checked < 4 {
		t.Fatalf("only %d paths checked: the recording lost its services", checked)
	}
}

// callerOn finds a task namespace on network net that is not of service svc.
func callerOn(m *topology.Model, net, svc string) string {
	for _, c := range m.Docker.Containers {
		if _, ok := c.Networks[net]; ok && c.Service != svc {
			for _, ns := range m.Namespaces {
				if ns.Docker != nil && ns.Docker.Container == c.Name {
					return ns.Name
				}
			}
		}
	}
	return ""
}

func sameSet(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
