package topology

import (
	"net/netip"
	"strconv"
)

// The model's closed sets of words are typed: a HopKind cannot be passed
// where a Verdict is wanted. Each is a string type whose value is the word
// the JSON output has always carried, so the encoding needs nothing of its
// own and stays byte for byte what it was.

// HopKind is what a hop of a path does.
type HopKind string

// Hop kinds.
const (
	HopDNAT       HopKind = "dnat"
	HopMark       HopKind = "mark"
	HopRedirect   HopKind = "redirect"
	HopIPVS       HopKind = "ipvs"
	HopSNAT       HopKind = "snat"
	HopMasquerade HopKind = "masquerade"
	HopBreak      HopKind = "break"
	// HopRoute says how the caller of a VIP reaches it (east-west).
	HopRoute HopKind = "route"
	// HopUnknown ends a path (or a backend's part of it) where what decides
	// the next step was not collected: Code and Reason say what.
	HopUnknown HopKind = "unknown"
)

// Verdict is a path's outcome.
type Verdict string

// Verdicts of a path.
const (
	VerdictComplete Verdict = "complete" // every hop to every backend is known and passes
	VerdictBroken   Verdict = "broken"   // a break hop says where and why
	VerdictUnknown  Verdict = "unknown"  // no break, but part of it depends on data not collected
)

// Code says what kind of break (Break*) or unknown (Unknown*) a hop is.
type Code string

// Action is what one table's chain decided for a packet (Decision.Verdict):
// an iptables verdict or NAT target, a chain's policy, ActLB where the
// iptables emulation of IPVS took it, EvalUnknown where the evaluator
// could not decide, "" where the chain fell through to ACCEPT.
type Action string

// Actions.
const (
	ActAccept     Action = "ACCEPT"
	ActDrop       Action = "DROP"
	ActReject     Action = "REJECT"
	ActDNAT       Action = "DNAT"
	ActSNAT       Action = "SNAT"
	ActRedirect   Action = "REDIRECT"
	ActMasquerade Action = "MASQUERADE"
	// ActLB: a rule of the iptables emulation of IPVS matched; path
	// reconstruction models that stage as a load balancer.
	ActLB Action = "LB"
	// EvalUnknown ends a walk at a rule the evaluator cannot decide (its
	// Undecidable reason, or arguments a reader did not compile;
	// Decision.By is that rule) or at a table that was not collected (By
	// is nil); a note says why. Nothing past it is guessed.
	EvalUnknown Action = "UNKNOWN"
)

// Drops reports whether the packet goes no further (DROP or REJECT).
func (a Action) Drops() bool { return a == ActDrop || a == ActReject }

// SourceNAT reports whether a is a source NAT (SNAT or MASQUERADE).
func (a Action) SourceNAT() bool { return a == ActSNAT || a == ActMasquerade }

// LBImpl says what implements a load-balancing service.
type LBImpl string

// Load balancer implementations.
const (
	// LBIPVS is the kernel's IPVS.
	LBIPVS LBImpl = "ipvs"
	// LBIptables is the mesh provisioner's emulation of an FWM service with
	// statistic/DNAT rules (recognised by shape: see LBServices).
	LBIptables LBImpl = "iptables"
)

// FirewallBackend is the iptables backend a ruleset was read from.
type FirewallBackend string

// Firewall backends ("" when not known).
const (
	BackendNFTables FirewallBackend = "nf_tables"
	BackendLegacy   FirewallBackend = "legacy"
)

// Endpoint is where a rewrite sends a packet: an address and, when the
// rewrite says, a port (0: none; a DNAT hop always carries the port the
// packet leaves with, an SNAT, MASQUERADE or route hop only the address).
// It prints as "10.0.0.4:80" or "10.0.0.4"; the zero Endpoint is none.
type Endpoint struct {
	Addr netip.Addr
	Port uint16
}

// EndpointOf is an Endpoint with a port.
func EndpointOf(ap netip.AddrPort) Endpoint { return Endpoint{ap.Addr(), ap.Port()} }

// IsValid reports whether the endpoint has an address.
func (e Endpoint) IsValid() bool { return e.Addr.IsValid() }

// AddrPort is the address with its port (0 when none).
func (e Endpoint) AddrPort() netip.AddrPort { return netip.AddrPortFrom(e.Addr, e.Port) }

func (e Endpoint) String() string {
	if !e.Addr.IsValid() {
		return ""
	}
	if e.Port == 0 {
		return e.Addr.String()
	}
	return e.AddrPort().String()
}

// MarshalText prints the endpoint as String does.
func (e Endpoint) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText reads what MarshalText prints.
func (e *Endpoint) UnmarshalText(b []byte) error {
	s := string(b)
	*e = Endpoint{}
	if s == "" {
		return nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		*e = EndpointOf(ap)
		return nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return err
	}
	e.Addr = a
	return nil
}

// ProtoPort is a protocol and port: "tcp/8080".
type ProtoPort struct {
	Proto string
	Port  int
}

func (p ProtoPort) String() string { return p.Proto + "/" + strconv.Itoa(p.Port) }
