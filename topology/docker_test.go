package topology

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func addrLink(name, prefix string) *Link {
	return &Link{Name: name, Kind: "veth", Addrs: []netip.Prefix{netip.MustParsePrefix(prefix)}}
}

func TestAnnotateDocker(t *testing.T) {
	meta := &DockerMeta{
		Networks: []DockerNetwork{
			{ID: "c5h7abz82pq0h1rtmf8tjkxn4", Name: "ingress", Driver: "overlay", Scope: "swarm", Ingress: true,
				Endpoints: map[string]netip.Addr{"ingress-sbox": netip.MustParseAddr("10.255.0.2"), "web.1.x": netip.MustParseAddr("10.255.0.4")}},
			{ID: "k3m9xq2w7ra1b2c3d4e5f6g7h", Name: "backend", Driver: "overlay", Scope: "swarm",
				Endpoints: map[string]netip.Addr{"lb-backend": netip.MustParseAddr("10.0.1.2")}},
			// Two networks sharing a 2-char prefix: "1-ab" is ambiguous.
			{ID: "ab11111111111111111111111", Name: "one", Driver: "overlay"},
			{ID: "ab22222222222222222222222", Name: "two", Driver: "overlay"},
		},
		Containers: []DockerContainer{
			{ID: "09cd513d96a2ffff", Name: "web.1.tq1", SandboxKey: "/var/run/docker/netns/09cd513d96a2", Service: "web", Task: "web.1"},
			{ID: "77aa", Name: "standalone", SandboxKey: "/var/run/docker/netns/77aa00000000"},
		},
	}
	m := &Model{
		Docker: meta,
		Namespaces: []*Namespace{
			{NetnsRef: NetnsRef{Name: "host"}, Links: []*Link{addrLink("docker_gwbridge", "172.18.0.1/16")}},
			// Docker 1.12: the ingress sandbox has a container-like name.
			{NetnsRef: NetnsRef{Name: "3f1e9b8c2a7d"}, Links: []*Link{addrLink("eth0", "10.255.0.2/16"), addrLink("eth1", "172.18.0.2/16")}},
			{NetnsRef: NetnsRef{Name: "1-c5h7abz82p"}},
			{NetnsRef: NetnsRef{Name: "2-k3m9xq2w7r"}},
			{NetnsRef: NetnsRef{Name: "lb_k3m9xq2w7"}},
			{NetnsRef: NetnsRef{Name: "1-ab"}},
			{NetnsRef: NetnsRef{Name: "lb_zzzzzzzzz"}},
			{NetnsRef: NetnsRef{Name: "09cd513d96a2"}, Links: []*Link{addrLink("eth0", "10.255.0.4/16")}},
			{NetnsRef: NetnsRef{Name: "77aa00000000"}},
			// Named like the modern sandbox but owning no ingress-sbox
			// address: the name alone says nothing.
			{NetnsRef: NetnsRef{Name: "ingress_sbox"}, Links: []*Link{addrLink("eth0", "10.255.0.9/16")}},
		},
	}
	AnnotateDocker(m)
	got := map[string]NetnsMeta{}
	for _, ns := range m.Namespaces {
		if ns.Docker != nil {
			got[ns.Name] = *ns.Docker
		}
	}
	want := map[string]NetnsMeta{
		"3f1e9b8c2a7d": {Network: "ingress"},
		"1-c5h7abz82p": {Network: "ingress"},
		"2-k3m9xq2w7r": {Network: "backend"},
		"lb_k3m9xq2w7": {Network: "backend"},
		"09cd513d96a2": {Container: "web.1.tq1", Service: "web", Task: "web.1"},
		"77aa00000000": {Container: "standalone"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("annotations (-want +got):\n%s", d)
	}

	// Idempotent.
	AnnotateDocker(m)
	got2 := map[string]NetnsMeta{}
	for _, ns := range m.Namespaces {
		if ns.Docker != nil {
			got2[ns.Name] = *ns.Docker
		}
	}
	if d := cmp.Diff(got, got2); d != "" {
		t.Errorf("second run changed annotations:\n%s", d)
	}
}

func TestAnnotateDockerWithoutMeta(t *testing.T) {
	AnnotateDocker(nil)
	m := &Model{Namespaces: []*Namespace{{NetnsRef: NetnsRef{Name: "1-c5h7abz82p"}}}}
	AnnotateDocker(m)
	if m.Namespaces[0].Docker != nil {
		t.Errorf("annotated without Docker metadata: %+v", m.Namespaces[0].Docker)
	}
}
