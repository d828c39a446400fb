// Package doctor names what is broken in a node's routing mesh, where and
// why: checks over the topology model (and, live, over a probe) that turn
// into findings with a stable code, the evidence, the command to confirm it
// by hand and the fix an operator would apply.
package doctor

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/meshtrace/meshtrace/topology"
)

// Severity is how bad a finding is.
type Severity string

// Severities.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
	Info    Severity = "info"
)

// Finding is one diagnosis.
type Finding struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Netns    string   `json:"netns"`
	Summary  string   `json:"summary"`
	Evidence string   `json:"evidence"`
	Fix      string   `json:"fix"`
	// Confirm is the command that shows the evidence by hand.
	Confirm string `json:"confirm,omitempty"`
	// Port is the published port concerned ("tcp/8080"), when one is.
	Port string `json:"port,omitempty"`
}

// Report is what doctor prints.
type Report struct {
	Source string `json:"source"`
	// Ports are the verdicts of the published ports checked, each the
	// verdict of the path `meshtrace path` reconstructs for it.
	Ports    []PortVerdict `json:"ports"`
	Findings []Finding     `json:"findings"`
	// Unknown says what could not be checked because it was not
	// collected, and why (never a fault).
	Unknown  []Unknown `json:"unknown,omitempty"`
	Coverage Coverage  `json:"coverage"`
}

// PortVerdict is one published port's verdict: complete, broken or
// unknown (topology.Verdict*).
type PortVerdict struct {
	Port    string           `json:"port"`
	Verdict topology.Verdict `json:"verdict"`
}

// Unknown is one thing doctor could not check: "tcp/8080: unknown past
// ingress_sbox: its iptables-save was not collected".
type Unknown struct {
	Port   string `json:"port,omitempty"`
	Netns  string `json:"netns,omitempty"`
	Reason string `json:"reason"`
}

// Options narrow the checks.
type Options struct {
	// Proto/Port restrict the port checks to one published port.
	Proto string
	Port  int
	// KeepAlive is the application's idle keep-alive, compared with
	// IPVS's TCP idle timeout (0: not compared).
	KeepAlive time.Duration
	// Probe, when set, asks a live probe whether a published port answers
	// (nil error) and is used for the "no answer" check.
	Probe func(proto string, port int) error
	// Checksums are what a capture saw of each packet's TCP/UDP checksum
	// at each hop (trace, during --probe); nil when nothing was captured.
	Checksums []topology.ChecksumSighting
	// CaptureChecksums, when set, is called once, after the probes ran,
	// for what a capture saw of them meanwhile (doctor --probe); it adds
	// to Checksums.
	CaptureChecksums func() []topology.ChecksumSighting
}

// Check runs every check that needs only the model (and Probe when given).
func Check(m *topology.Model, o Options) *Report {
	c := &checker{m: m, o: o, cov: newCoverage()}
	if !c.notSwarmNode() {
		c.publishedPorts()
		c.serviceVIPs()
		c.mtu()
		c.forwarding()
		c.rpFilter()
		c.vxlanBlocked()
		c.gossipBlocked()
		c.encrypted()
		c.firewallSplit()
		c.embeddedDNS()
		c.subnetOverlap()
		c.subnetExhausted()
		c.vxlanPortShared()
		c.vtepSource()
		c.staleNeighbours()
		c.badChecksum()
		c.conntrackFull()
		c.ipvsKernel()
		c.noAnswer()
	}
	r := &Report{Source: m.Source, Ports: c.verdicts, Findings: c.out, Unknown: c.unknowns, Coverage: c.cov.report()}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	if r.Ports == nil {
		r.Ports = []PortVerdict{}
	}
	sort.SliceStable(r.Findings, func(i, j int) bool {
		return rank(r.Findings[i].Severity) < rank(r.Findings[j].Severity)
	})
	return r
}

// Exit is doctor's exit status: 1 when a finding is above info, else 4
// when something could not be checked for lack of data (nothing can then
// be called healthy), else 0.
func (r *Report) Exit() int {
	switch w := r.Worst(); {
	case w == Error || w == Warning:
		return 1
	case len(r.Unknown) > 0:
		return 4
	}
	return 0
}

// Worst is the highest severity in the report, "" when it has none.
func (r *Report) Worst() Severity {
	if len(r.Findings) == 0 {
		return ""
	}
	return r.Findings[0].Severity
}

func rank(s Severity) int {
	switch s {
	case Error:
		return 0
	case Warning:
		return 1
	}
	return 2
}

type checker struct {
	m        *topology.Model
	o        Options
	out      []Finding
	verdicts []PortVerdict
	unknowns []Unknown
	cov      *coverage
	// staleN are the stale overlay neighbours (stale), found once.
	staleN    []topology.StaleNeigh
	staleDone bool
	// unanswered are the probes that failed, reported last (noAnswer).
	unanswered []probeFailure
}

// publishedPorts checks every published port; without the host's firewall
// the ports cannot all be listed, which is said, not taken for "none".
func (c *checker) publishedPorts() {
	ports := c.ports()
	var names []string
	for _, pp := range ports {
		c.portChecks(pp)
		names = append(names, pp.String())
	}
	host := c.m.Lookup("host")
	if host == nil || host.Firewall == nil {
		what := "which ports are published"
		if len(ports) > 0 {
			what = "which other ports are published"
		}
		c.unknown("", "host", fmt.Sprintf("published ports: unknown past host: its iptables-save was not collected: %s cannot be told", what))
		c.cov.skip("published ports", "iptables-save", "host")
	}
	if len(names) == 0 {
		names = []string{"none"}
	}
	c.cov.ran("published ports (" + strings.Join(names, ", ") + ")")
}

func (c *checker) verdict(port string, v topology.Verdict) {
	c.verdicts = append(c.verdicts, PortVerdict{Port: port, Verdict: v})
}

func (c *checker) unknown(port, netns, reason string) {
	for _, u := range c.unknowns {
		if u.Reason == reason {
			return
		}
	}
	c.unknowns = append(c.unknowns, Unknown{Port: port, Netns: netns, Reason: reason})
}

func (c *checker) add(f Finding) {
	for _, g := range c.out {
		if g.Code == f.Code && g.Netns == f.Netns && g.Port == f.Port && g.Summary == f.Summary {
			return
		}
	}
	c.out = append(c.out, f)
}

// nsPath is how to enter a namespace by hand.
func (c *checker) nsPath(name string) string {
	if ns := c.m.Lookup(name); ns != nil && ns.Path != "" {
		return ns.Path
	}
	if name == "host" {
		return "/proc/1/ns/net"
	}
	return "/run/docker/netns/" + name
}

// in prefixes a command with the nsenter that runs it in a namespace.
func (c *checker) in(netns, cmd string) string {
	if netns == "host" {
		return cmd
	}
	return fmt.Sprintf("nsenter --net=%s %s", c.nsPath(netns), cmd)
}

// ports are the published ports to check: what the host DNATs, what the
// ingress sandbox marks, and what Docker says is published.
func (c *checker) ports() []topology.ProtoPort {
	seen := map[topology.ProtoPort]bool{}
	var out []topology.ProtoPort
	add := func(p topology.ProtoPort) {
		if p.Port == 0 || seen[p] {
			return
		}
		if c.o.Port != 0 && (p.Port != c.o.Port || (c.o.Proto != "" && p.Proto != c.o.Proto)) {
			return
		}
		seen[p] = true
		out = append(out, p)
	}
	for _, p := range topology.PublishedPorts(c.m) {
		add(topology.ProtoPort{Proto: p.Proto, Port: p.Port})
	}
	for _, ns := range c.m.Namespaces {
		if ns.Role != topology.RoleIngressSandbox {
			continue
		}
		for _, p := range ns.MarkedPorts() {
			add(p)
		}
	}
	if d := c.m.Docker; d != nil {
		for _, s := range d.Services {
			for _, p := range s.Ports {
				if p.Mode == "" || p.Mode == "ingress" {
					add(topology.ProtoPort{Proto: p.Proto, Port: p.Published})
				}
			}
		}
	}
	if c.o.Port != 0 && len(out) == 0 {
		out = append(out, topology.ProtoPort{Proto: orTCP(c.o.Proto), Port: c.o.Port})
	}
	return out
}

func orTCP(p string) string {
	if p == "" {
		return "tcp"
	}
	return p
}

func ruleEvidence(text string, pkts uint64) string {
	if pkts > 0 {
		return fmt.Sprintf("%s  [%d pkts]", text, pkts)
	}
	return text
}
