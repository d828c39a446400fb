package inspect

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/dockerns"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/topology"
)

// TestLivePath builds Docker-shaped namespaces with real veths, bridges,
// VXLAN and iptables rules, reads them live, and checks the reconstructed
// paths against what was built: every published port's hops, and every
// backend resolved to the task namespace that owns it, with its REDIRECT.
func TestLivePath(t *testing.T) {
	for _, variant := range []dockerrules.Variant{dockerrules.Modern, dockerrules.Docker112} {
		w := world(t, dockerns.Options{Tasks: 3, Emulate: variant == dockerrules.Modern, Variant: variant, EastWest: variant == dockerrules.Modern,
			Services: []dockerns.ServiceSpec{
				{Name: "web", Ports: []dockerrules.Port{{Proto: "tcp", Published: 8080, Target: 80}}, Replicas: 2},
				{Name: "dns", Ports: []dockerrules.Port{{Proto: "udp", Published: 5353, Target: 53}}, Replicas: 1},
			}})
		m, err := Live(context.Background(), Options{HostNetns: w.HostPath, NetnsDirs: []string{w.Dir}, Firewall: FirewallAuto})
		if err != nil {
			t.Fatal(err)
		}
		topology.AnnotateDocker(m)
		topology.Classify(m)
		if r := m.Lookup(w.Sandbox).Role; r != topology.RoleIngressSandbox {
			t.Fatalf("variant %d: sandbox %s has role %s", variant, w.Sandbox, r)
		}
		if r := m.Lookup(w.Overlay).Role; r != topology.RoleOverlay {
			t.Fatalf("overlay %s has role %s", w.Overlay, r)
		}
		for _, svc := range w.Services {
			for _, port := range svc.Ports {
				p, err := topology.FindPath(m, topology.Query{Proto: port.Proto, Port: port.Published})
				if err != nil {
					t.Fatalf("%s/%d: %v", port.Proto, port.Published, err)
				}
				if variant == dockerrules.Docker112 {
					// 1.12's sandbox REDIRECTs, then IPVS would take the
					// mark at LOCAL_IN; this kernel has none, and the world
					// does not emulate it: the path must say exactly that.
					last := p.Hops[len(p.Hops)-1]
					if got := hopKinds(p.Hops); got != "dnat,mark,redirect,break" || p.Complete || last.Netns != w.Sandbox || !strings.Contains(last.Reason, "kernel has no IPVS") {
						t.Fatalf("1.12 %s/%d: hops %s: %+v", port.Proto, port.Published, got, p.Hops)
					}
					if r := p.Hops[2]; r.Netns != w.Sandbox || r.ToPort != port.Target {
						t.Errorf("1.12 redirect hop %+v, want the sandbox redirecting to %d", r, port.Target)
					}
					continue
				}
				want := "dnat,mark,ipvs,snat"
				if got := hopKinds(p.Hops); got != want || !p.Complete {
					t.Fatalf("variant %d %s/%d: hops %s (complete %v), want %s: %+v", variant, port.Proto, port.Published, got, p.Complete, want, p.Hops)
				}
				if lb := p.Hops[len(p.Hops)-2]; lb.Impl != "iptables" || lb.FWMark != svc.FWMark {
					t.Errorf("lb hop %+v, want impl iptables fwmark %d", lb, svc.FWMark)
				}
				// Backends: exactly the service's tasks, each in its own netns.
				owner := map[string]string{}
				for _, tk := range w.Tasks {
					owner[tk.IngressIP.String()] = tk.Name
				}
				var got, wantIPs []string
				for _, b := range svc.Backends {
					wantIPs = append(wantIPs, b.String())
				}
				for _, b := range p.Backends {
					got = append(got, b.IP)
					if b.Remote || b.Netns == nil || *b.Netns != owner[b.IP] || b.TargetPort != port.Target {
						t.Errorf("%s/%d backend %+v: want netns %s target %d", port.Proto, port.Published, b, owner[b.IP], port.Target)
					}
					if variant == dockerrules.Modern && (hopKinds(b.Hops) != "redirect" || b.Hops[0].ToPort != port.Target) {
						t.Errorf("backend %s hops %+v, want the task's REDIRECT to %d", b.IP, b.Hops, port.Target)
					}
				}
				sort.Strings(got)
				sort.Strings(wantIPs)
				if len(got) != len(wantIPs) || len(got) == 0 {
					t.Fatalf("backends %v, want %v", got, wantIPs)
				}
				for i := range got {
					if got[i] != wantIPs[i] {
						t.Fatalf("backends %v, want %v", got, wantIPs)
					}
				}
			}
		}
		if w.EastWestSvc != nil {
			caller := w.Tasks[0].Name
			p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 80, VIP: w.EastWestSvc.VIP, Netns: caller})
			if err != nil {
				t.Fatal(err)
			}
			if got := hopKinds(p.Hops); got != "route,mark,ipvs" || !p.Complete || len(p.Backends) != len(w.EastWestSvc.Backends) {
				t.Errorf("east-west %s from %s: hops %s complete %v backends %+v", w.EastWestSvc.VIP, caller, got, p.Complete, p.Backends)
			}
		}
		if _, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 9999}); err == nil {
			t.Error("tcp/9999 reported as published")
		}
	}
}

func hopKinds(hs []topology.Hop) string {
	s := ""
	for i, h := range hs {
		if i > 0 {
			s += ","
		}
		s += h.Kind
	}
	return s
}
