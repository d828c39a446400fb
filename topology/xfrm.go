package topology

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Xfrm is a namespace's IPsec state as the kernel's xfrm layer holds it:
// the security associations (SAs, `ip xfrm state`) and the security
// policies (SPs, `ip xfrm policy`). Docker's encrypted overlays program
// them in the host namespace: per remote node one ESP SA each way in
// transport mode (reqid 0xd0c4e3), and one out policy for the VXLAN
// datagrams to that node (udp dport 4789, mark 0xd0c4e3) whose template
// names the outbound SA's SPI (moby, libnetwork/drivers/overlay/
// encryption.go: programSA, programSP).
//
// No key is ever kept: an SA's algorithms carry their names and sizes only.
// States or Policies nil: not collected; empty: there are none.
type Xfrm struct {
	States   []XfrmState  `json:"states"`
	Policies []XfrmPolicy `json:"policies"`
}

// SPI is an IPsec Security Parameter Index, in host order. It prints as
// iproute2 prints it: 0x%08x.
type SPI uint32

func (s SPI) String() string { return fmt.Sprintf("0x%08x", uint32(s)) }

// MarshalText prints the SPI as String does.
func (s SPI) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads what MarshalText prints (or a decimal number).
func (s *SPI) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 0, 32)
	if err != nil {
		return fmt.Errorf("spi %q: %w", b, err)
	}
	*s = SPI(v)
	return nil
}

// XfrmProto is the transform protocol of an SA or a policy template
// (struct xfrm_id.proto): an IP protocol number.
type XfrmProto uint8

// Transform protocols, named as iproute2 names them (ipxfrm.c,
// xfrmproto_types).
const (
	XfrmESP      XfrmProto = 50
	XfrmAH       XfrmProto = 51
	XfrmComp     XfrmProto = 108
	XfrmRoute2   XfrmProto = 43  // IPPROTO_ROUTING (mobile IPv6)
	XfrmHAO      XfrmProto = 60  // IPPROTO_DSTOPTS (mobile IPv6)
	XfrmIPsecAny XfrmProto = 255 // IPSEC_PROTO_ANY (templates)
)

var xfrmProtoNames = map[XfrmProto]string{XfrmESP: "esp", XfrmAH: "ah", XfrmComp: "comp",
	XfrmRoute2: "route2", XfrmHAO: "hao", XfrmIPsecAny: "ipsec-any"}

func (p XfrmProto) String() string {
	if n, ok := xfrmProtoNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

// MarshalText prints the protocol's name, or its number.
func (p XfrmProto) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads what MarshalText prints.
func (p *XfrmProto) UnmarshalText(b []byte) error {
	v, ok := ParseXfrmProto(string(b))
	if !ok {
		return fmt.Errorf("xfrm proto %q: not a name or a number", b)
	}
	*p = v
	return nil
}

// ParseXfrmProto reads a name iproute2 prints for a transform protocol,
// or its number.
func ParseXfrmProto(s string) (XfrmProto, bool) {
	for p, n := range xfrmProtoNames {
		if n == s {
			return p, true
		}
	}
	v, err := strconv.ParseUint(s, 10, 8)
	return XfrmProto(v), err == nil
}

// XfrmMode is an SA's or a template's mode (XFRM_MODE_*).
type XfrmMode uint8

// Modes, in the kernel's numbering.
const (
	XfrmTransport XfrmMode = iota
	XfrmTunnel
	XfrmRO // route optimization
	XfrmInTrigger
	XfrmBEET
)

var xfrmModeNames = [...]string{"transport", "tunnel", "ro", "in_trigger", "beet"}

func (m XfrmMode) String() string {
	if int(m) < len(xfrmModeNames) {
		return xfrmModeNames[m]
	}
	return strconv.Itoa(int(m))
}

// MarshalText prints the mode as iproute2 does.
func (m XfrmMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads what MarshalText prints.
func (m *XfrmMode) UnmarshalText(b []byte) error {
	v, ok := ParseXfrmMode(string(b))
	if !ok {
		return fmt.Errorf("xfrm mode %q: not a name or a number", b)
	}
	*m = v
	return nil
}

// ParseXfrmMode reads a mode as iproute2 prints it, or its number.
func ParseXfrmMode(s string) (XfrmMode, bool) {
	for i, n := range xfrmModeNames {
		if n == s {
			return XfrmMode(i), true
		}
	}
	v, err := strconv.ParseUint(s, 10, 8)
	return XfrmMode(v), err == nil
}

// XfrmDir is a policy's direction (XFRM_POLICY_IN/OUT/FWD).
type XfrmDir uint8

// Policy directions, in the kernel's numbering.
const (
	XfrmIn XfrmDir = iota
	XfrmOut
	XfrmFwd
)

func (d XfrmDir) String() string {
	switch d {
	case XfrmIn:
		return "in"
	case XfrmOut:
		return "out"
	case XfrmFwd:
		return "fwd"
	}
	return strconv.Itoa(int(d))
}

// MarshalText prints the direction as iproute2 does.
func (d XfrmDir) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads what MarshalText prints.
func (d *XfrmDir) UnmarshalText(b []byte) error {
	switch s := string(b); s {
	case "in":
		*d = XfrmIn
	case "out":
		*d = XfrmOut
	case "fwd":
		*d = XfrmFwd
	default:
		v, err := strconv.ParseUint(s, 10, 8)
		if err != nil {
			return fmt.Errorf("xfrm dir %q: not in, out, fwd or a number", s)
		}
		*d = XfrmDir(v)
	}
	return nil
}

// XfrmSADir is an SA's direction (XFRMA_SA_DIR, Linux 6.10+), in the
// kernel's numbering; 0 when the SA has none.
type XfrmSADir uint8

// SA directions.
const (
	SADirIn  XfrmSADir = 1
	SADirOut XfrmSADir = 2
)

func (d XfrmSADir) String() string {
	switch d {
	case 0:
		return ""
	case SADirIn:
		return "in"
	case SADirOut:
		return "out"
	}
	return strconv.Itoa(int(d))
}

// MarshalText prints the direction as iproute2 does ("" for none).
func (d XfrmSADir) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads what MarshalText prints.
func (d *XfrmSADir) UnmarshalText(b []byte) error {
	switch s := string(b); s {
	case "":
		*d = 0
	case "in":
		*d = SADirIn
	case "out":
		*d = SADirOut
	default:
		v, err := strconv.ParseUint(s, 10, 8)
		if err != nil {
			return fmt.Errorf("xfrm sa dir %q: not in, out or a number", s)
		}
		*d = XfrmSADir(v)
	}
	return nil
}

// XfrmAction is what a policy does with the packets it selects.
type XfrmAction uint8

// Policy actions (XFRM_POLICY_ALLOW, XFRM_POLICY_BLOCK).
const (
	XfrmAllow XfrmAction = iota
	XfrmBlock
)

func (a XfrmAction) String() string {
	switch a {
	case XfrmAllow:
		return "allow"
	case XfrmBlock:
		return "block"
	}
	return strconv.Itoa(int(a))
}

// MarshalText prints the action as iproute2 does.
func (a XfrmAction) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads what MarshalText prints.
func (a *XfrmAction) UnmarshalText(b []byte) error {
	switch s := string(b); s {
	case "allow":
		*a = XfrmAllow
	case "block":
		*a = XfrmBlock
	default:
		v, err := strconv.ParseUint(s, 10, 8)
		if err != nil {
			return fmt.Errorf("xfrm action %q: not allow, block or a number", s)
		}
		*a = XfrmAction(v)
	}
	return nil
}

// XfrmAlgoKind is the role of an SA's algorithm, named as iproute2 names
// its attribute (ipxfrm.c, algo_types).
type XfrmAlgoKind string

// Algorithm kinds.
const (
	AlgoEnc       XfrmAlgoKind = "enc"        // XFRMA_ALG_CRYPT
	AlgoAuth      XfrmAlgoKind = "auth"       // XFRMA_ALG_AUTH
	AlgoAuthTrunc XfrmAlgoKind = "auth-trunc" // XFRMA_ALG_AUTH_TRUNC
	AlgoAEAD      XfrmAlgoKind = "aead"       // XFRMA_ALG_AEAD
	AlgoComp      XfrmAlgoKind = "comp"       // XFRMA_ALG_COMP
)

// XfrmAlgo is one algorithm of an SA, without its key.
type XfrmAlgo struct {
	Kind XfrmAlgoKind `json:"kind"`
	Name string       `json:"name"` // "rfc4106(gcm(aes))", "cbc(aes)"
	// KeyBits is the key's length in bits, 0 when not known (the key
	// was hidden before it was read).
	KeyBits int `json:"key_bits,omitempty"`
	// ICVBits is an AEAD's ICV length, TruncBits an auth-trunc's
	// truncation length, in bits.
	ICVBits   int `json:"icv_bits,omitempty"`
	TruncBits int `json:"trunc_bits,omitempty"`
}

// XfrmStateFlagNames name the XFRM_STATE_* flags by bit (1<<0 …), as
// iproute2 prints them (xfrm_state_info_print).
var XfrmStateFlagNames = [8]string{"noecn", "decap-dscp", "nopmtudisc", "wildrecv", "icmp", "af-unspec", "align4", "esn"}

// XfrmPolicyFlagNames name the XFRM_POLICY_* flags by bit (localok 1,
// icmp 2), as iproute2 prints them (xfrm_policy_info_print).
var XfrmPolicyFlagNames = [2]string{"localok", "icmp"}

// XfrmFlagNames names the bits of flags by names (bit i is names[i]), in
// bit order; a bit without a name is written as iproute2 writes what is
// left, in hex ("0x40").
func XfrmFlagNames(flags uint8, names []string) []string {
	var out []string
	for i, n := range names {
		if flags&(1<<i) != 0 {
			out = append(out, n)
			flags &^= 1 << i
		}
	}
	if flags != 0 {
		out = append(out, fmt.Sprintf("0x%x", flags))
	}
	return out
}

// XfrmMark is a mark value with its mask.
type XfrmMark struct {
	Value uint32 `json:"value"`
	Mask  uint32 `json:"mask"`
}

func (m XfrmMark) String() string { return fmt.Sprintf("%#x/%#x", m.Value, m.Mask) }

// XfrmEncap is an SA's UDP/TCP encapsulation (NAT traversal).
type XfrmEncap struct {
	Type  string     `json:"type"` // espinudp, espinudp-nonike, espintcp, or a number
	SPort uint16     `json:"sport"`
	DPort uint16     `json:"dport"`
	OA    netip.Addr `json:"oa,omitzero"`
}

// XfrmSelector selects packets: by source and destination prefix, IP
// protocol, ports and device. For ICMP the kernel keeps the type in SPort
// and the code in DPort, for GRE the key's halves; 0 and no protocol mean
// any.
type XfrmSelector struct {
	Src   netip.Prefix `json:"src"`
	Dst   netip.Prefix `json:"dst"`
	Proto uint8        `json:"proto,omitempty"`
	SPort uint16       `json:"sport,omitempty"`
	DPort uint16       `json:"dport,omitempty"`
	Dev   string       `json:"dev,omitempty"`
}

// XfrmState is one security association.
type XfrmState struct {
	Src   netip.Addr `json:"src"`
	Dst   netip.Addr `json:"dst"`
	Proto XfrmProto  `json:"proto"`
	SPI   SPI        `json:"spi"`
	Reqid uint32     `json:"reqid"`
	Mode  XfrmMode   `json:"mode"`
	// ReplayWindow is the anti-replay window size.
	ReplayWindow uint32 `json:"replay_window"`
	// Flags are the XFRM_STATE_* flags by iproute2's names (noecn,
	// decap-dscp, nopmtudisc, wildrecv, icmp, af-unspec, align4, esn).
	Flags      []string   `json:"flags,omitempty"`
	Mark       *XfrmMark  `json:"mark,omitempty"`
	OutputMark *XfrmMark  `json:"output_mark,omitempty"`
	Algos      []XfrmAlgo `json:"algos,omitempty"`
	Encap      *XfrmEncap `json:"encap,omitempty"`
	// Sel is the SA's selector, nil when it is all zero (any).
	Sel  *XfrmSelector `json:"sel,omitempty"`
	IfID uint32        `json:"if_id,omitempty"`
	// Dir is the SA's direction (Linux 6.10+), 0 when it has none.
	Dir XfrmSADir `json:"dir,omitzero"`
	// Stats are the SA's counters, nil when not read (`ip xfrm state`
	// without -s prints none).
	Stats *XfrmSAStats `json:"stats,omitempty"`
}

// XfrmSAStats are an SA's counters: what it carried (the current
// lifetime, struct xfrm_lifetime_cur) and what it refused (struct
// xfrm_stats).
type XfrmSAStats struct {
	Bytes   uint64 `json:"bytes"`
	Packets uint64 `json:"packets"`
	// OutOfWindow, Replay and IntegrityFailed count inbound packets
	// dropped as outside the replay window, as replays, and for a bad
	// ICV (iproute2 prints them as replay-window, replay, failed).
	OutOfWindow     uint32 `json:"out_of_window"`
	Replay          uint32 `json:"replay"`
	IntegrityFailed uint32 `json:"integrity_failed"`
}

// XfrmPolicy is one security policy.
type XfrmPolicy struct {
	Sel XfrmSelector `json:"sel"`
	Dir XfrmDir      `json:"dir"`
	// Socket is set for a per-socket policy (iproute2 prints "socket
	// DIR" instead of "dir DIR").
	Socket   bool       `json:"socket,omitempty"`
	Action   XfrmAction `json:"action"`
	Priority uint32     `json:"priority"`
	// Index is the kernel's index of the policy, 0 when not read (`ip
	// xfrm policy` prints it only with -s).
	Index uint32 `json:"index,omitempty"`
	// Type is "main" or "sub" (XFRM_POLICY_TYPE_*), "" when not shown.
	Type  string    `json:"type,omitempty"`
	Flags []string  `json:"flags,omitempty"` // localok, icmp
	Mark  *XfrmMark `json:"mark,omitempty"`
	IfID  uint32    `json:"if_id,omitempty"`
	// Tmpls are the transforms the policy requires, in order.
	Tmpls []XfrmTmpl `json:"tmpls,omitempty"`
}

// XfrmTmpl is a policy template: the SA a packet the policy selects must
// go through (out) or must have come through (in).
type XfrmTmpl struct {
	Src   netip.Addr `json:"src"`
	Dst   netip.Addr `json:"dst"`
	Proto XfrmProto  `json:"proto"`
	// SPI is 0 when the template takes any SA of its kind.
	SPI   SPI      `json:"spi,omitempty"`
	Reqid uint32   `json:"reqid"`
	Mode  XfrmMode `json:"mode"`
	// Optional is iproute2's "level use": the transform may be missing.
	Optional bool `json:"optional,omitempty"`
}

func (s XfrmState) String() string {
	return fmt.Sprintf("%s %s %s->%s reqid %d mode %s", s.Proto, s.SPI, s.Src, s.Dst, s.Reqid, s.Mode)
}

func (p XfrmPolicy) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dir %s src %s dst %s", p.Dir, p.Sel.Src, p.Sel.Dst)
	if p.Sel.Proto != 0 {
		fmt.Fprintf(&b, " proto %s", ProtoName(p.Sel.Proto))
	}
	if p.Sel.DPort != 0 {
		fmt.Fprintf(&b, " dport %d", p.Sel.DPort)
	}
	if p.Mark != nil {
		fmt.Fprintf(&b, " mark %s", p.Mark)
	}
	for _, t := range p.Tmpls {
		fmt.Fprintf(&b, " tmpl %s %s->%s spi %s reqid %d", t.Proto, t.Src, t.Dst, t.SPI, t.Reqid)
	}
	return b.String()
}
