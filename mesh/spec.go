package mesh

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// LB implementations.
const (
	LBAuto     = "auto"
	LBIPVS     = "ipvs"
	LBIptables = "iptables"
)

// Defaults of `mesh up`.
const (
	DefaultName    = "demo"
	DefaultNodes   = 2
	DefaultService = "web:8080:80x2"
	MaxNodes       = 100
)

// Config is what `mesh up` was asked to build.
type Config struct {
	Name     string
	Nodes    int
	Services []ServiceSpec
	LB       string // auto, ipvs or iptables
}

// ServiceSpec is one --service NAME:PUBLISHED:TARGET[/udp]xREPLICAS, or
// NAME:dnsrr:TARGET[/udp]xREPLICAS for a service in DNS round-robin
// endpoint mode: no VIP, no published port (Docker refuses to publish a
// dnsrr service's port through the ingress), its name answers its tasks'
// addresses.
type ServiceSpec struct {
	Name      string `json:"name"`
	Proto     string `json:"proto"`
	Published int    `json:"published"`
	Target    int    `json:"target"`
	Replicas  int    `json:"replicas"`
	// EndpointMode is EndpointVIP ("" reads as it) or EndpointDNSRR.
	EndpointMode string `json:"endpoint_mode,omitempty"`
}

// Endpoint modes of a service.
const (
	EndpointVIP   = "vip"
	EndpointDNSRR = "dnsrr"
)

// DNSRR says whether the service is in DNS round-robin mode.
func (s ServiceSpec) DNSRR() bool { return s.EndpointMode == EndpointDNSRR }

func (s ServiceSpec) String() string {
	if s.DNSRR() {
		return fmt.Sprintf("%s:%s:%d/%sx%d", s.Name, EndpointDNSRR, s.Target, s.Proto, s.Replicas)
	}
	return fmt.Sprintf("%s:%d:%d/%sx%d", s.Name, s.Published, s.Target, s.Proto, s.Replicas)
}

var (
	meshNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,23}$`)
	svcNameRE  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,15}$`)
)

// ParseService parses NAME:PUBLISHED:TARGET[/tcp|/udp][xREPLICAS], or
// NAME:dnsrr:TARGET... for a DNS round-robin service; replicas default to
// 1, the protocol to tcp.
func ParseService(spec string) (ServiceSpec, error) {
	bad := func(format string, a ...any) (ServiceSpec, error) {
		return ServiceSpec{}, fmt.Errorf("service %q: %s (want NAME:PUBLISHED:TARGET[/udp]xREPLICAS, e.g. web:8080:80x2, or NAME:dnsrr:TARGET[/udp]xREPLICAS)", spec, fmt.Sprintf(format, a...))
	}
	parts := strings.Split(spec, ":")
	if len(parts) != 3 {
		return bad("%d colon-separated fields, want 3", len(parts))
	}
	s := ServiceSpec{Name: parts[0], Proto: "tcp", Replicas: 1}
	if !svcNameRE.MatchString(s.Name) {
		return bad("name %q must be 1-16 of [a-z0-9-], starting with a letter", s.Name)
	}
	if parts[1] == EndpointDNSRR {
		s.EndpointMode = EndpointDNSRR
	} else {
		pub, err := parsePort(parts[1])
		if err != nil {
			return bad("published port: %v (or dnsrr for a service with no VIP and no published port)", err)
		}
		s.Published = pub
	}
	rest := parts[2]
	if i := strings.LastIndexByte(rest, 'x'); i >= 0 {
		n, err := strconv.Atoi(rest[i+1:])
		if err != nil || n < 1 {
			return bad("replicas %q must be a number ≥ 1", rest[i+1:])
		}
		s.Replicas, rest = n, rest[:i]
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		s.Proto = rest[i+1:]
		if s.Proto != "tcp" && s.Proto != "udp" {
			return bad("protocol %q must be tcp or udp", s.Proto)
		}
		rest = rest[:i]
	}
	tgt, err := parsePort(rest)
	if err != nil {
		return bad("target port: %v", err)
	}
	s.Target = tgt
	return s, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return n, nil
}

// WithDefaults fills what was left empty.
func (c Config) WithDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Nodes == 0 {
		c.Nodes = DefaultNodes
	}
	if c.LB == "" {
		c.LB = LBAuto
	}
	if len(c.Services) == 0 {
		s, _ := ParseService(DefaultService)
		c.Services = []ServiceSpec{s}
	}
	return c
}

// Validate checks everything that can be checked before touching the
// kernel: names, node count, LB, duplicate services and published ports.
// Address exhaustion is checked by NewPlan.
func (c Config) Validate() error {
	if err := ValidName(c.Name); err != nil {
		return err
	}
	if c.Nodes < 1 || c.Nodes > MaxNodes {
		return fmt.Errorf("--nodes %d: must be 1-%d", c.Nodes, MaxNodes)
	}
	switch c.LB {
	case LBAuto, LBIPVS, LBIptables:
	default:
		return fmt.Errorf("--lb %q: must be auto, ipvs or iptables", c.LB)
	}
	if len(c.Services) == 0 {
		return fmt.Errorf("mesh %s: no service", c.Name)
	}
	names := map[string]bool{}
	ports := map[string]string{}
	for _, s := range c.Services {
		if !svcNameRE.MatchString(s.Name) {
			return fmt.Errorf("service %q: name must be 1-16 of [a-z0-9-], starting with a letter", s.Name)
		}
		if names[s.Name] {
			return fmt.Errorf("service %s: defined twice", s.Name)
		}
		names[s.Name] = true
		if s.Proto != "tcp" && s.Proto != "udp" {
			return fmt.Errorf("service %s: protocol %q must be tcp or udp", s.Name, s.Proto)
		}
		switch s.EndpointMode {
		case "", EndpointVIP:
		case EndpointDNSRR:
			if s.Published != 0 {
				return fmt.Errorf("service %s: a dnsrr service cannot publish port %d through the ingress (Docker refuses it too)", s.Name, s.Published)
			}
		default:
			return fmt.Errorf("service %s: endpoint mode %q must be vip or dnsrr", s.Name, s.EndpointMode)
		}
		check := []int{s.Published, s.Target}
		if s.DNSRR() {
			check = check[1:]
		}
		for _, p := range check {
			if p < 1 || p > 65535 {
				return fmt.Errorf("service %s: port %d out of range 1-65535", s.Name, p)
			}
		}
		if s.Replicas < 1 {
			return fmt.Errorf("service %s: replicas %d must be ≥ 1", s.Name, s.Replicas)
		}
		if s.DNSRR() {
			continue
		}
		key := fmt.Sprintf("%s/%d", s.Proto, s.Published)
		if other, ok := ports[key]; ok {
			return fmt.Errorf("service %s: published port %s is already used by service %s", s.Name, key, other)
		}
		ports[key] = s.Name
	}
	return nil
}

// ValidName checks a mesh name: it becomes a directory and part of the
// agent's command line, so 1-24 of [a-z0-9-], starting with a letter or
// digit.
func ValidName(name string) error {
	if !meshNameRE.MatchString(name) {
		return fmt.Errorf("mesh name %q: must be 1-24 of [a-z0-9-], starting with a letter or digit", name)
	}
	return nil
}
