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
		{"web:8080:80x2", ServiceSpec{"web", "tcp", 8080, 80, 2}},
		{"dns:5353:53/udpx2", ServiceSpec{"dns", "udp", 5353, 53, 2}},
		{"api:9000:9000/tcpx10", ServiceSpec{"api", "tcp", 9000, 9000, 10}},
		{"nginx:80:80", ServiceSpec{"nginx", "tcp", 80, 80, 1}},
		{"x:1:65535x1", ServiceSpec{"x", "tcp", 1, 65535, 1}},
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
	} {
		_, err := ParseService(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseService(%q) = %v, want an error containing %q", tc.in, err, tc.wantErr)
		}
	}
}

func FuzzParseService(f *testing.F) {
	for _, s := range []string{"web:8080:80x2", "dns:5353:53/udpx2", "a:1:2", "::x", "a:1:2/udp/tcpx3x4"} {
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
	web := ServiceSpec{"web", "tcp", 8080, 80, 2}
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
			c.Services = append(c.Services, ServiceSpec{"api", "tcp", 8080, 81, 1})
		}, "published port tcp/8080 is already used by service web"},
		{"same name twice", func(c *Config) { c.Services = append(c.Services, web) }, "defined twice"},
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
	c.Services = []ServiceSpec{web, {"dns", "udp", 8080, 53, 1}}
	if err := c.Validate(); err != nil {
		t.Errorf("tcp and udp on the same port rejected: %v", err)
	}
}

func TestWithDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	want := Config{Name: "demo", Nodes: 2, LB: LBAuto, Services: []ServiceSpec{{"web", "tcp", 8080, 80, 2}}}
	if d := cmp.Diff(want, c); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
}
