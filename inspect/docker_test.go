package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/meshtrace/meshtrace/topology"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "docker", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantTestdataMeta is what testdata/docker/*.json (the shape `docker
// network inspect`, `docker inspect` and `docker service inspect` print)
// says.
var wantTestdataMeta = &topology.DockerMeta{
	Networks: []topology.DockerNetwork{
		{ID: "k3m9xq2w7ra1b2c3d4e5f6g7h", Name: "backend", Driver: "overlay", Scope: "swarm",
			Subnet: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.1.1"),
			Endpoints: map[string]netip.Addr{"api.1.3lq0l7y0zq1x2c3v4b5n6m7a8": netip.MustParseAddr("10.0.1.4"), "lb-backend": netip.MustParseAddr("10.0.1.2")},
			Peers:     []topology.DockerPeer{{Name: "3e1b8a6c4f2d", IP: netip.MustParseAddr("192.168.56.11")}}},
		{ID: "e0b6a4c1f3d2e5a7b9c8d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1", Name: "docker_gwbridge", Driver: "bridge", Scope: "local",
			Subnet: netip.MustParsePrefix("172.18.0.0/16"), Gateway: netip.MustParseAddr("172.18.0.1"),
			Endpoints: map[string]netip.Addr{"gateway_4f6e2d1c0b9a": netip.MustParseAddr("172.18.0.3"), "ingress-sbox": netip.MustParseAddr("172.18.0.2")}},
		{ID: "c5h7abz82pq0h1rtmf8tjkxn4", Name: "ingress", Driver: "overlay", Scope: "swarm", Ingress: true,
			Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"),
			Endpoints: map[string]netip.Addr{"web.1.tq1x9w2e3r4t5y6u7i8o9p0a1": netip.MustParseAddr("10.0.0.4"), "ingress-sbox": netip.MustParseAddr("10.0.0.2")},
			// --verbose's Services: tasks of every node, not the "" service's
			// ingress-endpoints.
			Tasks: []topology.DockerTask{{Name: "web.1", Service: "web", IP: netip.MustParseAddr("10.0.0.4"), Node: netip.MustParseAddr("192.0.2.10")},
				{Name: "web.2", Service: "web", IP: netip.MustParseAddr("10.0.0.6"), Node: netip.MustParseAddr("192.0.2.11")}},
			// Peers: the network's nodes, this one among them.
			Peers: []topology.DockerPeer{{Name: "node0-7c1e", IP: netip.MustParseAddr("192.0.2.10")}, {Name: "node1-2b9f", IP: netip.MustParseAddr("192.0.2.11")}}},
	},
	Services: []topology.DockerService{
		{ID: "p0o9i8u7y6t5r4e3w2q1a2s3d", Name: "api", EndpointMode: "vip",
			VIPs: map[string]netip.Prefix{"k3m9xq2w7ra1b2c3d4e5f6g7h": netip.MustParsePrefix("10.0.1.5/24")}},
		{ID: "x7k2m9p4q1w8e5r3t6y0u2i4o", Name: "web", EndpointMode: "vip",
			VIPs:  map[string]netip.Prefix{"c5h7abz82pq0h1rtmf8tjkxn4": netip.MustParsePrefix("10.0.0.5/24")},
			Ports: []topology.DockerPort{{Proto: "tcp", Published: 8080, Target: 80, Mode: "ingress"}}},
	},
	Containers: []topology.DockerContainer{
		{ID: "4f6e2d1c0b9a8f7e6d5c4b3a29180706f5e4d3c2b1a09f8e7d6c5b4a39281706", Name: "web.1.tq1x9w2e3r4t5y6u7i8o9p0a1",
			SandboxKey: "/var/run/docker/netns/09cd513d96a2", Service: "web", Task: "web.1",
			Networks: map[string]netip.Addr{"ingress": netip.MustParseAddr("10.0.0.4")}},
	},
}

func TestDockerFromJSON(t *testing.T) {
	got, err := DockerFromJSON(readTestdata(t, "networks.json"), readTestdata(t, "containers.json"), readTestdata(t, "services.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(wantTestdataMeta, got, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); d != "" {
		t.Errorf("meta (-want +got):\n%s", d)
	}
}

func TestDockerFromJSONParts(t *testing.T) {
	got, err := DockerFromJSON(nil, nil, nil)
	if err != nil || got != nil {
		t.Fatalf("nothing collected: got %+v, %v; want nil, nil", got, err)
	}
	got, err = DockerFromJSON(nil, readTestdata(t, "containers.json"), []byte("\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Networks) != 0 || len(got.Services) != 0 || len(got.Containers) != 1 {
		t.Errorf("containers only: got %d networks, %d services, %d containers", len(got.Networks), len(got.Services), len(got.Containers))
	}
	// One object instead of an array.
	var arr []json.RawMessage
	if err := json.Unmarshal(readTestdata(t, "services.json"), &arr); err != nil {
		t.Fatal(err)
	}
	got, err = DockerFromJSON(nil, nil, arr[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Services) != 1 || got.Services[0].Name != "web" {
		t.Errorf("single object: got %+v", got.Services)
	}
}

func TestDockerFromJSONErrors(t *testing.T) {
	nets := readTestdata(t, "networks.json")
	truncated := nets[:len(nets)/2]
	wrongType := []byte(strings.Replace(string(nets), `"Ingress": true`, `"Ingress": "yes"`, 1))
	ingressLine := 1 + strings.Count(string(nets[:strings.Index(string(nets), `"Ingress": true`)]), "\n")
	badAddr := []byte(strings.Replace(string(nets), `"IPv4Address": "10.0.0.2/24"`, `"IPv4Address": "10.0.0.300/24"`, 1))
	tests := []struct {
		name string
		data []byte
		want []string
	}{
		{"truncated", truncated, []string{"docker networks", "unexpected EOF"}},
		{"wrong type", wrongType, []string{"docker networks", fmt.Sprintf("line %d col", ingressLine), "Ingress"}},
		{"bad address", badAddr, []string{"docker networks", "10.0.0.300"}},
		{"trailing garbage", append(append([]byte{}, nets...), []byte("\nfoo")...), []string{"docker networks", "after the JSON array"}},
		{"not json", []byte("Error: No such network: foo\n"), []string{"docker networks", "line 1 col"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DockerFromJSON(tt.data, nil, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestDockerDataRoundTrip(t *testing.T) {
	d, err := dockerDataFromJSON(
		jsonInput{"networks", readTestdata(t, "networks.json")},
		jsonInput{"containers", readTestdata(t, "containers.json")},
		jsonInput{"services", readTestdata(t, "services.json")},
	)
	if err != nil {
		t.Fatal(err)
	}
	// What Collect writes: json.MarshalIndent of the API objects.
	enc := func(v any) []byte {
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	got, err := DockerFromJSON(enc(d.Networks), enc(d.Containers), enc(d.Services))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantTestdataMeta, got, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestTaskName(t *testing.T) {
	tests := []struct{ label, id, want string }{
		{"web.1.tq1x9w2e3r4t5y6u7i8o9p0a1", "tq1x9w2e3r4t5y6u7i8o9p0a1", "web.1"},
		{"web.1.tq1x9w2e3r4t5y6u7i8o9p0a1", "", "web.1"},
		{"agent.3e1b8a6c4f2dq9w8e7r6t5y4u.k2j3h4g5f6d7s8a9q0w1e2r3t", "k2j3h4g5f6d7s8a9q0w1e2r3t", "agent.3e1b8a6c4f2dq9w8e7r6t5y4u"},
		{"my.dotted.svc.2.abc", "abc", "my.dotted.svc.2"},
		{"plain", "", "plain"},
		{"", "x", ""},
	}
	for _, tt := range tests {
		if got := taskName(tt.label, tt.id); got != tt.want {
			t.Errorf("taskName(%q, %q) = %q, want %q", tt.label, tt.id, got, tt.want)
		}
	}
}

// fakeDocker is a DockerReader with canned answers.
type fakeDocker struct {
	nets      []network.Inspect
	ctrs      []container.InspectResponse
	svcs      []swarm.Service
	netErr    error
	svcErr    error
	svcCalled bool
}

var _ DockerReader = (*fakeDocker)(nil)

func (f *fakeDocker) Networks(context.Context) ([]network.Inspect, error) {
	return f.nets, f.netErr
}

func (f *fakeDocker) Containers(context.Context) ([]container.InspectResponse, error) {
	return f.ctrs, nil
}

func (f *fakeDocker) Services(context.Context) ([]swarm.Service, error) {
	f.svcCalled = true
	return f.svcs, f.svcErr
}

func TestReadDocker(t *testing.T) {
	f := &fakeDocker{
		nets:   []network.Inspect{{Network: network.Network{ID: "n1", Name: "ingress", Ingress: true}}},
		ctrs:   []container.InspectResponse{{ID: "c1", Name: "/web.1.x"}},
		svcErr: errors.New("This node is not a swarm manager."),
	}
	d, err := ReadDocker(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Networks) != 1 || len(d.Containers) != 1 || d.Services != nil {
		t.Errorf("got %d networks, %d containers, services %v", len(d.Networks), len(d.Containers), d.Services)
	}
	if len(d.Notes) != 1 || !strings.Contains(d.Notes[0], "not a swarm manager") {
		t.Errorf("notes = %q", d.Notes)
	}
	m := d.Meta()
	if m.Containers[0].Name != "web.1.x" || m.Networks[0].Name != "ingress" {
		t.Errorf("meta = %+v", m)
	}
	// A worker's services were not read: nil, not "none"; what was read
	// and holds nothing stays non-nil.
	if m.Services != nil {
		t.Errorf("services not read, yet %#v", m.Services)
	}
	if e := (&DockerData{Services: []swarm.Service{}}).Meta(); e.Services == nil || e.Networks != nil {
		t.Errorf("no service read: %#v", e)
	}

	f.netErr = errors.New("boom")
	if _, err := ReadDocker(context.Background(), f); err == nil || !strings.Contains(err.Error(), "docker networks: boom") {
		t.Errorf("network failure: err = %v", err)
	}
}

func FuzzDockerFromJSON(f *testing.F) {
	for _, name := range []string{"networks.json", "containers.json", "services.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "docker", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []byte(nil), []byte(nil))
		f.Add([]byte(nil), b, b)
	}
	f.Add([]byte("{}"), []byte("[null]"), []byte(`[{"Endpoint":{"VirtualIPs":[{"Addr":""}]}}]`))
	f.Fuzz(func(t *testing.T, nets, ctrs, svcs []byte) {
		m, err := DockerFromJSON(nets, ctrs, svcs)
		if err == nil && m != nil {
			// What was read attaches without trouble.
			annotateFuzzModel(m)
		}
	})
}

// annotateFuzzModel runs the annotation over a model with namespaces named
// after everything the metadata mentions.
func annotateFuzzModel(d *topology.DockerMeta) {
	m := &topology.Model{Docker: d}
	for _, c := range d.Containers {
		m.Namespaces = append(m.Namespaces, &topology.Namespace{NetnsRef: topology.NetnsRef{Name: filepath.Base(c.SandboxKey)}})
	}
	for _, n := range d.Networks {
		if len(n.ID) >= 10 {
			m.Namespaces = append(m.Namespaces, &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "1-" + n.ID[:10]}}, &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "lb_" + n.ID[:9]}})
		}
	}
	topology.AnnotateDocker(m)
}

// An empty answer (a daemon's empty body) is an error, never a panic.
func TestDecodeArrayEmpty(t *testing.T) {
	var nets []map[string]any
	for _, in := range []string{"", " \n\t"} {
		if err := decodeArray([]byte(in), &nets); err == nil {
			t.Errorf("decode %q: no error", in)
		}
	}
}

// TestDockerJSONStream: docker/*.json as a stream of values, as
// `docker network inspect --format '{{json .}}' A B` (one object a line)
// or several commands' arrays pasted in one file print them, reads as the
// array of the same objects; a bad value is named by its line in the file.
func TestDockerJSONStream(t *testing.T) {
	const rec = "../fixtures/swarm-vm28/collect/docker/networks.json"
	data, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	var objs []json.RawMessage
	if err := json.Unmarshal(data, &objs); err != nil || len(objs) < 3 {
		t.Fatalf("%s: %v (%d objects)", rec, err, len(objs))
	}
	var lines, arrays bytes.Buffer
	for i, o := range objs {
		var c bytes.Buffer
		json.Compact(&c, o)
		lines.Write(c.Bytes())
		lines.WriteByte('\n')
		if i == 1 {
			arrays.WriteString("]\n[")
		} else if i > 0 {
			arrays.WriteString(",")
		}
		arrays.Write(o)
	}
	want, err := DockerFromJSON(data, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"json lines": lines.Bytes(), "two arrays": append(append([]byte("["), arrays.Bytes()...), ']')} {
		got, err := DockerFromJSON(in, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); d != "" {
			t.Errorf("%s (-array +stream):\n%s", name, d)
		}
	}
	bad := append(lines.Bytes(), []byte(`{"Name": 3}`+"\n")...)
	_, err = DockerFromJSON(bad, nil, nil)
	if want := fmt.Sprintf("line %d col", len(objs)+1); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a bad last value: %v, want %q", err, want)
	}
}
