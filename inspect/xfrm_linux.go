package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/topology"
)

// kernelXfrm dumps a namespace's SAs and policies over NETLINK_XFRM with
// the target's xfrm socket, opened when the module gate says opening it
// loads nothing (kmod.NeedXfrm).
//
// It decodes the kernel's structures itself (with vishvananda/netlink's
// nl types for their layout) rather than through netlink.XfrmStateList and
// XfrmPolicyList, which lose what the model and `ip xfrm` keep: the
// address family (XfrmAddress.ToIP takes an IPv6 address whose last 12
// bytes are zero, fd00::, for an IPv4 one, and a policy dump's ::/0 for
// 0.0.0.0/0), the selector's port masks, the policy type, the state and
// policy flags. Every field is read as iproute2 prints it (ipxfrm.c), so
// that a namespace read live and from `ip xfrm` output says the same.
type kernelXfrm struct{}

var _ XfrmReader = kernelXfrm{}

func newXfrmReader() XfrmReader { return kernelXfrm{} }

func (kernelXfrm) ReadXfrm(t *Target) (*topology.Xfrm, error) {
	if err := kmod.NeedXfrm.Check(t.gate()); err != nil {
		return nil, err
	}
	h, err := t.handle()
	if err != nil {
		return nil, err
	}
	if t.res.xfrm <= 0 {
		if t.res.xfrmErr != nil {
			return nil, fmt.Errorf("xfrm netlink socket: %w", t.res.xfrmErr)
		}
		return nil, errors.New("no NETLINK_XFRM socket")
	}
	dev := func(ifindex int32) string {
		if l, err := h.LinkByIndex(int(ifindex)); err == nil {
			return l.Attrs().Name
		}
		return "if" + strconv.Itoa(int(ifindex))
	}
	return readXfrm(func(typ uint16, f func(typ uint16, data []byte)) error {
		return nlDump(t.res.xfrm, typ, nil, f)
	}, dev)
}

// xfrmDump runs one NETLINK_XFRM dump (XFRM_MSG_GETSA, XFRM_MSG_GETPOLICY)
// and hands f every message: the seam the tests fake.
type xfrmDump func(typ uint16, f func(typ uint16, data []byte)) error

// readXfrm dumps and decodes the SAs and the policies; dev names a
// selector's ifindex.
func readXfrm(dump xfrmDump, dev func(int32) string) (*topology.Xfrm, error) {
	x := &topology.Xfrm{States: []topology.XfrmState{}, Policies: []topology.XfrmPolicy{}}
	var derr error
	_, err := retry(func() (struct{}, error) {
		x.States, derr = x.States[:0], nil
		return struct{}{}, dump(nl.XFRM_MSG_GETSA, func(typ uint16, data []byte) {
			if typ != nl.XFRM_MSG_NEWSA || derr != nil {
				return
			}
			s, err := decodeXfrmState(data, dev)
			if err != nil {
				derr = fmt.Errorf("SA %d: %w", len(x.States)+1, err)
				return
			}
			x.States = append(x.States, s)
		})
	})
	if err = errors.Join(err, derr); err != nil {
		return nil, fmt.Errorf("xfrm state dump: %w", err)
	}
	_, err = retry(func() (struct{}, error) {
		x.Policies, derr = x.Policies[:0], nil
		return struct{}{}, dump(nl.XFRM_MSG_GETPOLICY, func(typ uint16, data []byte) {
			if typ != nl.XFRM_MSG_NEWPOLICY || derr != nil {
				return
			}
			p, err := decodeXfrmPolicy(data, dev)
			if err != nil {
				derr = fmt.Errorf("policy %d: %w", len(x.Policies)+1, err)
				return
			}
			x.Policies = append(x.Policies, p)
		})
	})
	if err = errors.Join(err, derr); err != nil {
		return nil, fmt.Errorf("xfrm policy dump: %w", err)
	}
	return x, nil
}

// xfrmAddr is an xfrm_address_t of family fam.
func xfrmAddr(a nl.XfrmAddress, fam uint16) (netip.Addr, error) {
	switch fam {
	case unix.AF_INET:
		return netip.AddrFrom4([4]byte(a[:4])), nil
	case unix.AF_INET6:
		return netip.AddrFrom16(a), nil
	}
	return netip.Addr{}, fmt.Errorf("address family %d", fam)
}

// xfrmSel converts a selector as xfrm_selector_print prints it; zero, when
// it is all zero, is false (an SA's any-selector, which iproute2 leaves
// out). fam is the SA's or policy's family, for a selector without one.
func xfrmSel(s *nl.XfrmSelector, fam uint16, dev func(int32) string) (topology.XfrmSelector, bool, error) {
	var out topology.XfrmSelector
	if *s == (nl.XfrmSelector{}) {
		return out, false, nil
	}
	if s.Family != 0 {
		fam = s.Family
	}
	src, err1 := xfrmAddr(s.Saddr, fam)
	dst, err2 := xfrmAddr(s.Daddr, fam)
	if err := errors.Join(err1, err2); err != nil {
		return out, false, fmt.Errorf("selector: %w", err)
	}
	// As given, not masked: iproute2 prints the address the kernel keeps.
	out.Src, out.Dst = netip.PrefixFrom(src, int(s.PrefixlenS)), netip.PrefixFrom(dst, int(s.PrefixlenD))
	if !out.Src.IsValid() || !out.Dst.IsValid() {
		return out, false, fmt.Errorf("selector: prefix lengths /%d, /%d", s.PrefixlenS, s.PrefixlenD)
	}
	out.Proto = s.Proto
	sport, dport := nl.Swap16(s.Sport), nl.Swap16(s.Dport)
	switch s.Proto {
	case unix.IPPROTO_GRE:
		if s.SportMask != 0 || s.DportMask != 0 {
			out.SPort, out.DPort = sport, dport
		}
	case unix.IPPROTO_MH:
		if s.SportMask != 0 {
			out.SPort = sport // the MH type; the dport iproute2 shows only with -s
		}
	default: // ports, and ICMP's type and code
		if s.SportMask != 0 {
			out.SPort = sport
		}
		if s.DportMask != 0 {
			out.DPort = dport
		}
	}
	if s.Ifindex > 0 {
		out.Dev = dev(s.Ifindex)
	}
	return out, true, nil
}

// xfrmAttrs splits the attributes after a fixed header of size n.
func xfrmAttrs(data []byte, n int) (map[uint16][]byte, error) {
	if len(data) < n {
		return nil, fmt.Errorf("%d bytes, want at least %d", len(data), n)
	}
	return rtAttrs(data[n:])
}

// rtAttrs splits netlink attributes (struct rtattr: length, type, value,
// padded to 4 bytes) by type, the NLA_F_* flags masked off. Unlike
// nl.ParseRouteAttr, which panics on a length shorter than the header, it
// returns an error for any length that does not fit.
func rtAttrs(b []byte) (map[uint16][]byte, error) {
	out := map[uint16][]byte{}
	for len(b) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(b))
		if l < unix.SizeofRtAttr || l > len(b) {
			return nil, fmt.Errorf("attribute length %d with %d bytes left", l, len(b))
		}
		out[binary.NativeEndian.Uint16(b[2:])&nlaTypeMask] = b[unix.SizeofRtAttr:l]
		b = b[min((l+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1), len(b)):]
	}
	return out, nil
}

// xfrmAlgoAttr reads struct xfrm_algo (name[64], key_len in bits, key), or
// xfrm_algo_auth / xfrm_algo_aead when extra: their trunc_len / icv_len
// follows key_len. The key is not read.
func xfrmAlgoAttr(kind topology.XfrmAlgoKind, v []byte, extra bool) (topology.XfrmAlgo, error) {
	a := topology.XfrmAlgo{Kind: kind}
	need := 68
	if extra {
		need = 72
	}
	if len(v) < need {
		return a, fmt.Errorf("%s algorithm: %d bytes", kind, len(v))
	}
	name := v[:64]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	a.Name = string(name)
	a.KeyBits = int(binary.NativeEndian.Uint32(v[64:68]))
	if extra {
		n := int(binary.NativeEndian.Uint32(v[68:72]))
		if kind == topology.AlgoAEAD {
			a.ICVBits = n
		} else {
			a.TruncBits = n
		}
	}
	return a, nil
}

func u32Attr(attrs map[uint16][]byte, typ uint16) (uint32, bool) {
	v, ok := attrs[typ]
	if !ok || len(v) < 4 {
		return 0, false
	}
	return binary.NativeEndian.Uint32(v), true
}

func markAttr(attrs map[uint16][]byte) *topology.XfrmMark {
	v, ok := attrs[nl.XFRMA_MARK]
	if !ok || len(v) < nl.SizeofXfrmMark {
		return nil
	}
	return &topology.XfrmMark{Value: binary.NativeEndian.Uint32(v), Mask: binary.NativeEndian.Uint32(v[4:])}
}

// encapNames are iproute2's names of the encapsulation types
// (UDP_ENCAP_ESPINUDP_NON_IKE 1, UDP_ENCAP_ESPINUDP 2, TCP_ENCAP_ESPINTCP 7).
var encapNames = map[uint16]string{1: "espinudp-nonike", 2: "espinudp", 7: "espintcp"}

// decodeXfrmState decodes an XFRM_MSG_NEWSA payload: struct
// xfrm_usersa_info, then attributes.
func decodeXfrmState(data []byte, dev func(int32) string) (topology.XfrmState, error) {
	var s topology.XfrmState
	attrs, err := xfrmAttrs(data, nl.SizeofXfrmUsersaInfo)
	if err != nil {
		return s, err
	}
	info := *nl.DeserializeXfrmUsersaInfo(data[:nl.SizeofXfrmUsersaInfo])
	if s.Src, err = xfrmAddr(info.Saddr, info.Family); err != nil {
		return s, err
	}
	if s.Dst, err = xfrmAddr(info.Id.Daddr, info.Family); err != nil {
		return s, err
	}
	s.Proto, s.SPI, s.Reqid = topology.XfrmProto(info.Id.Proto), topology.SPI(nl.Swap32(info.Id.Spi)), info.Reqid
	s.Mode, s.ReplayWindow = topology.XfrmMode(info.Mode), uint32(info.ReplayWindow)
	s.Flags = topology.XfrmFlagNames(info.Flags, topology.XfrmStateFlagNames[:])
	s.Stats = &topology.XfrmSAStats{Bytes: info.Curlft.Bytes, Packets: info.Curlft.Packets,
		OutOfWindow: info.Stats.ReplayWindow, Replay: info.Stats.Replay, IntegrityFailed: info.Stats.IntegrityFailed}
	sel, ok, err := xfrmSel(&info.Sel, info.Family, dev)
	if err != nil {
		return s, err
	}
	if ok {
		s.Sel = &sel
	}
	s.Mark = markAttr(attrs)
	if v, ok := u32Attr(attrs, nl.XFRMA_SET_MARK); ok {
		s.OutputMark = &topology.XfrmMark{Value: v, Mask: 0xffffffff}
		if m, ok := u32Attr(attrs, nl.XFRMA_SET_MARK_MASK); ok {
			s.OutputMark.Mask = m
		}
	}
	// In iproute2's order: auth (unless auth-trunc), auth-trunc, aead,
	// enc, comp. The kernel sends an auth algorithm both ways.
	for _, a := range []struct {
		typ   uint16
		kind  topology.XfrmAlgoKind
		extra bool
	}{
		{nl.XFRMA_ALG_AUTH, topology.AlgoAuth, false}, {nl.XFRMA_ALG_AUTH_TRUNC, topology.AlgoAuthTrunc, true},
		{nl.XFRMA_ALG_AEAD, topology.AlgoAEAD, true}, {nl.XFRMA_ALG_CRYPT, topology.AlgoEnc, false},
		{nl.XFRMA_ALG_COMP, topology.AlgoComp, false},
	} {
		v, ok := attrs[a.typ]
		if !ok || (a.typ == nl.XFRMA_ALG_AUTH && attrs[nl.XFRMA_ALG_AUTH_TRUNC] != nil) {
			continue
		}
		algo, err := xfrmAlgoAttr(a.kind, v, a.extra)
		if err != nil {
			return s, err
		}
		s.Algos = append(s.Algos, algo)
	}
	if v, ok := attrs[nl.XFRMA_ENCAP]; ok {
		if len(v) < nl.SizeofXfrmEncapTmpl {
			return s, fmt.Errorf("encap: %d bytes", len(v))
		}
		e := nl.DeserializeXfrmEncapTmpl(v[:nl.SizeofXfrmEncapTmpl])
		oa, err := xfrmAddr(e.EncapOa, info.Family)
		if err != nil {
			return s, err
		}
		name, ok := encapNames[e.EncapType]
		if !ok {
			name = strconv.Itoa(int(e.EncapType))
		}
		s.Encap = &topology.XfrmEncap{Type: name, SPort: nl.Swap16(e.EncapSport), DPort: nl.Swap16(e.EncapDport), OA: oa}
	}
	s.IfID, _ = u32Attr(attrs, nl.XFRMA_IF_ID)
	if v, ok := attrs[nl.XFRMA_SA_DIR]; ok && len(v) >= 1 {
		s.Dir = topology.XfrmSADir(v[0])
	}
	return s, nil
}

// xfrmPolicyMax is XFRM_POLICY_MAX: a dumped policy's dir at or above it
// is a per-socket policy's (dir + XFRM_POLICY_MAX).
const xfrmPolicyMax = 3

// decodeXfrmPolicy decodes an XFRM_MSG_NEWPOLICY payload: struct
// xfrm_userpolicy_info, then attributes.
func decodeXfrmPolicy(data []byte, dev func(int32) string) (topology.XfrmPolicy, error) {
	var p topology.XfrmPolicy
	attrs, err := xfrmAttrs(data, nl.SizeofXfrmUserpolicyInfo)
	if err != nil {
		return p, err
	}
	info := *nl.DeserializeXfrmUserpolicyInfo(data[:nl.SizeofXfrmUserpolicyInfo])
	fam := info.Sel.Family
	if fam == 0 {
		fam = unix.AF_INET
	}
	if p.Sel, _, err = xfrmSel(&info.Sel, fam, dev); err != nil {
		return p, err
	}
	if !p.Sel.Src.IsValid() { // all-zero: any IPv4
		p.Sel.Src, p.Sel.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0), netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	p.Dir = topology.XfrmDir(info.Dir)
	if info.Dir >= xfrmPolicyMax {
		p.Socket, p.Dir = true, topology.XfrmDir(info.Dir-xfrmPolicyMax)
	}
	p.Action, p.Priority, p.Index = topology.XfrmAction(info.Action), info.Priority, info.Index
	p.Flags = topology.XfrmFlagNames(info.Flags, topology.XfrmPolicyFlagNames[:])
	if v, ok := attrs[nl.XFRMA_POLICY_TYPE]; ok && len(v) >= 1 {
		switch v[0] {
		case 0:
			p.Type = "main"
		case 1:
			p.Type = "sub"
		default:
			p.Type = strconv.Itoa(int(v[0]))
		}
	}
	p.Mark = markAttr(attrs)
	p.IfID, _ = u32Attr(attrs, nl.XFRMA_IF_ID)
	v := attrs[nl.XFRMA_TMPL]
	if len(v)%nl.SizeofXfrmUserTmpl != 0 {
		return p, fmt.Errorf("templates: %d bytes", len(v))
	}
	for i := 0; i < len(v); i += nl.SizeofXfrmUserTmpl {
		t := *nl.DeserializeXfrmUserTmpl(v[i : i+nl.SizeofXfrmUserTmpl])
		tfam := t.Family
		if tfam == 0 {
			tfam = fam
		}
		src, err1 := xfrmAddr(t.Saddr, tfam)
		dst, err2 := xfrmAddr(t.XfrmId.Daddr, tfam)
		if err := errors.Join(err1, err2); err != nil {
			return p, fmt.Errorf("template %d: %w", i/nl.SizeofXfrmUserTmpl+1, err)
		}
		p.Tmpls = append(p.Tmpls, topology.XfrmTmpl{Src: src, Dst: dst, Proto: topology.XfrmProto(t.XfrmId.Proto),
			SPI: topology.SPI(nl.Swap32(t.XfrmId.Spi)), Reqid: t.Reqid, Mode: topology.XfrmMode(t.Mode), Optional: t.Optional != 0})
	}
	return p, nil
}
