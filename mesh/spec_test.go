package mesh

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseService(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ServiceSpec
	}{
		{"web:8080:80x2", ServiceSpec{Name: "web", Proto: "tcp", Published: 8080, Target: 80, Replicas: 2}},
		{"dns:5353:53/udpx2", ServiceSpec{Name: "dns", Proto: "udp", Published: 5353, Target: 53, Replicas: 2}},
		{"api:9000:9000/tcpx10", ServiceSpec{Name: "api", Proto: "tcp", Published: 9000, Target: 9000, Replicas: 10}},
		{"nginx:80:80", ServiceSpec{Name: "nginx", Proto: "tcp", Published: 80, Target: 80, Replicas: 1}},
		{"x:1:65535x1", ServiceSpec{Name: "x", Proto: "tcp", Published: 1, Target: 65535, Replicas: 1}},
		{"db:dnsrr:5432x2", ServiceSpec{Name: "db", Proto: "tcp", Target: 5432, Replicas: 2, EndpointMode: EndpointDNSRR}},
		{"ns:dnsrr:53/udp", ServiceSpec{Name: "ns", Proto: "udp", Target: 53, Replicas: 1, EndpointMode: EndpointDNSRR}},
	} {
		got, err := ParseService(tc.in)
		if err != nil {
			t.Errorf("ParseService(%q): %v", tc.in, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("ParseService(%q) (-want +got):\n%s", tc.in, d)
		}
	}
}

func TestParseServiceErrors(t *testing.T) {
	for _, tc := range []struct{ in, wantErr string }{
		{"", "3"},
		{"web:8080", "want 3"},
		{"web:8080:80:1", "want 3"},
		{"Web:8080:80x2", "name"},
		{"1web:8080:80x2", "name"},
		{"web:0:80x2", "published port"},
		{"web:70000:80x2", "published port"},
		{"web:8080:80x0", "replicas"},
		{"web:8080:80xtwo", "replicas"},
		{"web:8080:80/sctpx2", "protocol"},
		{"web:8080:/udpx2", "target port"},
		{"web:http:80x2", "published port"},
		{"web:DNSRR:80x2", "published port"},
		{"db:dnsrr:0x2", "target port"},
	} {
		_, err := ParseService(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseService(%q) = %v, want an error containing %q", tc.in, err, tc.wantErr)
		}
	}
}

func FuzzParseService(f *testing.F) {
	for _, s := range []string{"web:8080:80x2", "dns:5353:53/udpx2", "a:1:2", "::x", "a:1:2/udp/tcpx3x4", "db:dnsrr:5432x2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseService(s)
		if err != nil {
			return
		}
		c := Config{Name: "f", Nodes: 1, LB: LBIptables, Services: []ServiceSpec{sp}}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseService(%q) = %+v, which Validate rejects: %v", s, sp, err)
		}
	})
}

func TestValidate(t *testing.T) {
	web := ServiceSpec{Name: "web", Proto: "tcp", Published: 8080, Target: 80, Replicas: 2}
	ok := Config{Name: "demo", Nodes: 2, LB: LBAuto, Services: []ServiceSpec{web}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"bad name", func(c *Config) { c.Name = "My Mesh" }, "mesh name"},
		{"name with slash", func(c *Config) { c.Name = "../etc" }, "mesh name"},
		{"long name", func(c *Config) { c.Name = strings.Repeat("a", 25) }, "mesh name"},
		{"no nodes", func(c *Config) { c.Nodes = 0 }, "--nodes"},
		{"too many nodes", func(c *Config) { c.Nodes = MaxNodes + 1 }, "--nodes"},
		{"bad lb", func(c *Config) { c.LB = "nft" }, "--lb"},
		{"no service", func(c *Config) { c.Services = nil }, "no service"},
		{"same port twice", func(c *Config) {
			c.Services = append(c.Services, ServiceSpec{Name: "api", Proto: "tcp", Published: 8080, Target: 81, Replicas: 1})
		}, "published port tcp/8080 is already used by service web"},
		{"same name twice", func(c *Config) { c.Services = append(c.Services, web) }, "defined twice"},
		{"dnsrr published", func(c *Config) {
			c.Services = append(c.Services, ServiceSpec{Name: "db", Proto: "tcp", Published: 5432, Target: 5432, Replicas: 1, EndpointMode: EndpointDNSRR})
		}, "cannot publish"},
		{"bad endpoint mode", func(c *Config) { c.Services[0].EndpointMode = "rr" }, "endpoint mode"},
	} {
		c := ok
		c.Services = append([]ServiceSpec(nil), ok.Services...)
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: Validate() = %v, want an error containing %q", tc.name, err, tc.wantErr)
		}
	}
	// The same port on both protocols is fine, as in Docker.
	c := ok
	c.Services = []ServiceSpec{web, {Name: "dns", Proto: "udp", Published: 8080, Target: 53, Replicas: 1}}
	if err := c.Validate(); err != nil {
		t.Errorf("tcp and udp on the same port rejected: %v", err)
	}
}

func TestWithDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	want := Config{Name: "demo", Nodes: 2, LB: LBAuto, Services: []ServiceSpec{{Name: "web", Proto: "tcp", Published: 8080, Target: 80, Replicas: 2}}}
	if d := cmp.Diff(want, c); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
}
