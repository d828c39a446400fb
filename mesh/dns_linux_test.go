package mesh_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/internal/meshtest"
	"github.com/meshtrace/meshtrace/internal/probe"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/mesh"
)

// TestEmbeddedDNSAndGossip: on a 3-node mesh, every task asks 127.0.0.11:53
// (DNATed by its own DOCKER_OUTPUT rules to its own resolver port) over
// UDP and TCP: a service answers its VIP, tasks.NAME and a dnsrr service
// its tasks' addresses, anything else fails; a dnsrr task is reachable
// at the addresses its name gives, across nodes; every node's gossip port
// answers the other nodes on TCP and UDP with the node's name.
func TestEmbeddedDNSAndGossip(t *testing.T) {
	testutil.NeedRoot(t)
	name := meshtest.Name(t)
	meshtest.Up(t, name, "--nodes", "3", "--service", "web:8080:80x3", "--service", "db:dnsrr:5432x2", "--lb", "iptables")
	st, code := statusJSON(t, name)
	if code != 0 || !st.Health.Healthy {
		t.Fatalf("mesh status: exit %d, %+v", code, st.Health)
	}
	web, db := st.Services[0], st.Services[1]
	ips := func(s mesh.ServiceState) []netip.Addr {
		var out []netip.Addr
		for _, tk := range s.Tasks {
			out = append(out, tk.IP)
		}
		return out
	}
	want := map[string][]netip.Addr{"web": {web.VIP}, "tasks.web": ips(web), "db": ips(db), "tasks.db": ips(db), "nope": nil}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range st.Services {
		for _, tk := range s.Tasks {
			if tk.Resolving == nil || !*tk.Resolving || tk.Resolver.UDPPort == 0 {
				t.Errorf("%s: resolving %v, resolver %+v", tk.Name, tk.Resolving, tk.Resolver)
			}
			for _, proto := range []string{"udp", "tcp"} {
				for q, addrs := range want {
					r, err := probe.Lookup(ctx, probe.Query{Netns: tk.Netns, From: tk.Name, Proto: proto, Name: q})
					got := slices.SortedFunc(slices.Values(r.Addrs), netip.Addr.Compare)
					exp := slices.SortedFunc(slices.Values(addrs), netip.Addr.Compare)
					rcode := "NOERROR"
					if addrs == nil {
						rcode = "SERVFAIL"
					}
					if err != nil || r.Rcode != rcode || !slices.Equal(got, exp) {
						t.Errorf("%s asks %s over %s: %+v %v, want %s %v", tk.Name, q, proto, r, err, rcode, exp)
					}
				}
			}
		}
	}
	// East-west to a dnsrr service: db.1 on node0 reaches both db tasks
	// (db.2 on node1: across VXLAN) at the addresses DNS gives. (web's
	// tasks cannot: Docker's ingress filter in a task drops every
	// connection it starts from its ingress address.)
	from := db.Tasks[0]
	r, err := probe.Lookup(ctx, probe.Query{Netns: from.Netns, Name: "db"})
	if err != nil {
		t.Fatal(err)
	}
	reached := map[string]bool{}
	for _, a := range r.Addrs {
		rep, err := mesh.Ask(ctx, from.Netns, "tcp", netip.AddrPortFrom(a, 5432).String(), "")
		if err != nil {
			t.Fatalf("%s -> db at %s: %v", from.Name, a, err)
		}
		reached[rep.Task] = true
	}
	if len(reached) != 2 {
		t.Errorf("%s reached %v through db's DNS answers", from.Name, reached)
	}
	for _, from := range st.Nodes {
		for _, to := range st.Nodes {
			if from.Name == to.Name {
				continue
			}
			addr := netip.AddrPortFrom(to.IP, addrplan.GossipPort)
			a, err := probe.Do(ctx, probe.Request{Netns: from.Host, Name: from.Name, Proto: "udp", To: addr})
			if err != nil || a.First() != to.Name {
				t.Errorf("%s -> %s udp gossip: %q %v", from.Name, addr, a.First(), err)
			}
			a, err = probe.Do(ctx, probe.Request{Netns: from.Host, Name: from.Name, Proto: "tcp", To: addr, Mode: probe.Reached})
			if err != nil {
				t.Errorf("%s -> %s tcp gossip: %v", from.Name, addr, err)
			}
		}
	}
	if t.Failed() {
		out, _, _ := meshtest.Run(t, "mesh", "exec", "--name", name, web.Tasks[0].Name, "--", "iptables-save", "-t", "nat")
		fmt.Println(out)
	}
}
