package topology_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
)

// TestServiceQueries resolves services and tasks by name on recorded nodes:
// the Docker 28 VM (truth/service-ps.txt: web publishes 8080->80, api,
// caller and sapi have VIPs, rr is dnsrr; truth/vips.txt the VIPs), the
// Docker 1.12 bundle (web publishes tcp 8080 and udp 5353) and the
// east-west bundle (api publishes nothing, its task's sockets were not
// collected).
func TestServiceQueries(t *testing.T) {
	vm28 := loadSource(t, fixturesDir+"/swarm-vm28/collect")
	d112 := loadSource(t, fixturesDir+"/bundles/docker112")
	ew := loadSource(t, fixturesDir+"/bundles/eastwest")
	caller := vm28.Lookup("8c59e2f9d533")
	if caller == nil || caller.Docker == nil || caller.Docker.Task != "caller.1" {
		t.Fatalf("the recording changed: %+v", caller)
	}
	api := netip.MustParseAddr("10.0.1.2")
	sapi := netip.MustParseAddr("10.0.2.2")
	for _, c := range []struct {
		name string
		m    *topology.Model
		sq   topology.ServiceQuery
		want []topology.Query
		err  string
	}{
		{"published", vm28, topology.ServiceQuery{Service: "web"}, []topology.Query{{Proto: "tcp", Port: 8080}}, ""},
		{"two published", d112, topology.ServiceQuery{Service: "web"}, []topology.Query{{Proto: "tcp", Port: 8080}, {Proto: "udp", Port: 5353}}, ""},
		{"one of two by proto", d112, topology.ServiceQuery{Service: "web", Proto: "udp"}, []topology.Query{{Proto: "udp", Port: 5353}}, ""},
		{"not that port", d112, topology.ServiceQuery{Service: "web", Port: 9}, nil, "publishes tcp/8080, udp/5353, not 9"},
		{"publishes nothing", vm28, topology.ServiceQuery{Service: "api"}, nil, "give --from-task"},
		// The target port of a service that publishes nothing is what
		// its task listens on (ss.txt of api.1: httpd on 80).
		{"task name", vm28, topology.ServiceQuery{Service: "api", From: "caller.1"}, []topology.Query{{Proto: "tcp", Port: 80, VIP: api, Netns: caller.Name}}, ""},
		{"full task name", vm28, topology.ServiceQuery{Service: "api", From: caller.Docker.Container}, []topology.Query{{Proto: "tcp", Port: 80, VIP: api, Netns: caller.Name}}, ""},
		{"netns name", vm28, topology.ServiceQuery{Service: "api", From: caller.Name, Port: 8000}, []topology.Query{{Proto: "tcp", Port: 8000, VIP: api, Netns: caller.Name}}, ""},
		// caller is not on secnet: the query stands, its path breaks.
		{"VIP out of reach", vm28, topology.ServiceQuery{Service: "sapi", From: "caller.1"}, []topology.Query{{Proto: "tcp", Port: 80, VIP: sapi, Netns: caller.Name}}, ""},
		{"dnsrr", vm28, topology.ServiceQuery{Service: "rr", From: "caller.1"}, nil, "path --dns rr --from-task caller.1"},
		{"ingress VIP only", vm28, topology.ServiceQuery{Service: "web", From: "caller.1"}, nil, "no VIP outside the ingress network"},
		{"unknown service", vm28, topology.ServiceQuery{Service: "nope"}, nil, "known services: api, caller, rr, sapi, web"},
		{"unknown task", vm28, topology.ServiceQuery{Service: "api", From: "nope.1"}, nil, "caller.1 (netns 8c59e2f9d533)"},
		{"no port known", ew, topology.ServiceQuery{Service: "api", From: "front.1"}, nil, "no target port known: give --port"},
		{"no metadata", withoutDocker(vm28), topology.ServiceQuery{Service: "web"}, nil, "Docker's metadata was not collected"},
	} {
		got, err := topology.ServiceQueries(c.m, c.sq)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: got %v, %v; want an error with %q", c.name, got, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}

// TestServicePathsAnswer: the paths named by service agree with what the
// recorded node answered (truth/traffic.txt: caller reached api, not sapi;
// the published port answered).
func TestServicePathsAnswer(t *testing.T) {
	m := loadSource(t, fixturesDir+"/swarm-vm28/collect")
	for _, c := range []struct {
		sq   topology.ServiceQuery
		want topology.Verdict
	}{
		{topology.ServiceQuery{Service: "web"}, topology.VerdictComplete},
		{topology.ServiceQuery{Service: "api", From: "caller.1"}, topology.VerdictComplete},
		{topology.ServiceQuery{Service: "sapi", From: "caller.1"}, topology.VerdictBroken},
	} {
		qs, err := topology.ServiceQueries(m, c.sq)
		if err != nil || len(qs) != 1 {
			t.Fatalf("%+v: %v, %v", c.sq, qs, err)
		}
		p, err := topology.FindPath(m, qs[0])
		if err != nil || p.Verdict != c.want {
			t.Errorf("%+v: %v, %v; want %s", c.sq, p, err, c.want)
		}
	}
}

func withoutDocker(m *topology.Model) *topology.Model {
	c := *m
	c.Docker = nil
	return &c
}

// TestServiceNamesNameless: services Docker's metadata gives without a
// name are listed (and found) by their ID, and a list of nothing says why
// instead of "known services: " followed by nothing.
func TestServiceNamesNameless(t *testing.T) {
	m := &topology.Model{Docker: &topology.DockerMeta{Services: []topology.DockerService{
		{ID: "k3m9xq2w7r1a2b3c4d5e6f7g8", Name: ""}, {ID: "abc", Name: ""}, {ID: "z9y8x7w6v5u4t3", Name: "web"}}}}
	if got := strings.Join(topology.ServiceNames(m), ","); got != "k3m9xq2w7r1a,web" {
		t.Errorf("names %q", got)
	}
	if s, err := topology.FindService(m, "k3m9xq2w7r1a"); err != nil || s.ID != "k3m9xq2w7r1a2b3c4d5e6f7g8" {
		t.Errorf("by listed ID: %v %v", s, err)
	}
	m.Docker.Services = m.Docker.Services[1:2]
	_, err := topology.FindService(m, "web")
	if err == nil || !strings.Contains(err.Error(), "neither a name nor an ID") {
		t.Errorf("nameless only: %v", err)
	}
}
