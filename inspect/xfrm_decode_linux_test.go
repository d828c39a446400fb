package inspect

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/topology"
)

func attr(typ int, data []byte) []byte { return nl.NewRtAttr(typ, data).Serialize() }

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// algo is struct xfrm_algo (extra < 0) or xfrm_algo_auth / _aead (extra:
// trunc_len / icv_len), with a key of keyBits.
func algo(name string, keyBits, extra int) []byte {
	b := make([]byte, 64)
	copy(b, name)
	b = binary.NativeEndian.AppendUint32(b, uint32(keyBits))
	if extra >= 0 {
		b = binary.NativeEndian.AppendUint32(b, uint32(extra))
	}
	return append(b, make([]byte, keyBits/8)...)
}

// saMessages are the two SAs of fixtures/cmdout/text-only/
// keys-ip-xfrm-state.txt (written from iproute2's print code) as the
// kernel sends them (xfrm_user.c, copy_to_user_state
// and copy_to_user_state_extra: an auth algorithm both as XFRMA_ALG_AUTH
// and XFRMA_ALG_AUTH_TRUNC).
func saMessages() [][]byte {
	var a nl.XfrmUsersaInfo
	a.Family = unix.AF_INET
	a.Saddr.FromIP(net.ParseIP("192.0.2.10"))
	a.Id.Daddr.FromIP(net.ParseIP("192.0.2.11"))
	a.Id.Spi, a.Id.Proto, a.Reqid = nl.Swap32(0x5e4c7f1a), unix.IPPROTO_ESP, 0xd0c4e3
	a.Sel.Family = unix.AF_INET
	a.Curlft.Bytes, a.Curlft.Packets, a.Stats.IntegrityFailed = 4620, 42, 3
	first := append(append([]byte{}, a.Serialize()...), attr(nl.XFRMA_ALG_AEAD, algo("rfc4106(gcm(aes))", 160, 64))...)

	var b nl.XfrmUsersaInfo
	b.Family = unix.AF_INET
	b.Saddr.FromIP(net.ParseIP("198.51.100.1"))
	b.Id.Daddr.FromIP(net.ParseIP("198.51.100.2"))
	b.Id.Spi, b.Id.Proto, b.Reqid, b.Mode, b.ReplayWindow = nl.Swap32(0x101), unix.IPPROTO_ESP, 7, 1, 32
	b.Flags = 1 | 32 | 128 // noecn af-unspec esn
	b.Sel.Family, b.Sel.Proto, b.Sel.PrefixlenS, b.Sel.PrefixlenD = unix.AF_INET, unix.IPPROTO_TCP, 16, 16
	b.Sel.Saddr.FromIP(net.ParseIP("10.1.0.0"))
	b.Sel.Daddr.FromIP(net.ParseIP("10.2.0.0"))
	b.Sel.Dport, b.Sel.DportMask = nl.Swap16(443), 0xffff
	encap := nl.XfrmEncapTmpl{EncapType: 2, EncapSport: nl.Swap16(4500), EncapDport: nl.Swap16(4500)}
	second := append([]byte{}, b.Serialize()...)
	for _, at := range [][]byte{
		attr(nl.XFRMA_MARK, append(u32(0x10), u32(0xff)...)), attr(nl.XFRMA_SET_MARK, u32(0x20)), attr(nl.XFRMA_SET_MARK_MASK, u32(0xf0)),
		attr(nl.XFRMA_ALG_AUTH, algo("hmac(sha256)", 256, -1)), attr(nl.XFRMA_ALG_CRYPT, algo("cbc(aes)", 128, -1)),
		attr(nl.XFRMA_ALG_AUTH_TRUNC, algo("hmac(sha256)", 256, 128)), attr(nl.XFRMA_ENCAP, encap.Serialize()),
		attr(nl.XFRMA_IF_ID, u32(7)), attr(nl.XFRMA_SA_DIR, []byte{2}),
	} {
		second = append(second, at...)
	}
	return [][]byte{first, second}
}

// fakeDump answers XFRM_MSG_GETSA with sas and XFRM_MSG_GETPOLICY with
// policies.
func fakeDump(sas, policies [][]byte) xfrmDump {
	return func(typ uint16, f func(uint16, []byte)) error {
		msgs, reply := sas, uint16(nl.XFRM_MSG_NEWSA)
		if typ == nl.XFRM_MSG_GETPOLICY {
			msgs, reply = policies, nl.XFRM_MSG_NEWPOLICY
		}
		for _, m := range msgs {
			f(reply, m)
		}
		return nil
	}
}

func noDev(i int32) string { return "if" + string(rune('0'+i)) }

// TestDecodeXfrmState: the kernel's messages decode to what iproute2
// prints of the same SAs, keys left out, counters kept.
func TestDecodeXfrmState(t *testing.T) {
	x, err := readXfrm(fakeDump(saMessages(), nil), noDev)
	if err != nil {
		t.Fatal(err)
	}
	printed, bad, err := parse.XfrmState("ip", strings.NewReader(cmdoutFile(t, "text-only/keys-ip-xfrm-state.txt")))
	if err != nil || len(bad) > 0 {
		t.Fatal(err, bad)
	}
	if st := x.States[0].Stats; st == nil || st.Bytes != 4620 || st.Packets != 42 || st.IntegrityFailed != 3 {
		t.Errorf("counters %+v", st)
	}
	for i := range x.States {
		x.States[i].Stats = nil // ip xfrm state without -s shows none
	}
	if d := cmp.Diff(printed, x.States, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); d != "" {
		t.Errorf("ip vs netlink (-ip +netlink):\n%s", d)
	}
	if len(x.Policies) != 0 || x.Policies == nil {
		t.Errorf("policies %v, want none (not nil)", x.Policies)
	}
}

// TestDecodeXfrmBroken: messages the decoder cannot read are errors naming
// the SA or policy, never a panic or a guess.
func TestDecodeXfrmBroken(t *testing.T) {
	good := saMessages()
	short := good[0][:nl.SizeofXfrmUsersaInfo-1]
	badFamily := append([]byte{}, good[0]...)
	info := nl.DeserializeXfrmUsersaInfo(badFamily)
	info.Family = 99
	truncAlgo := append(append([]byte{}, good[0][:nl.SizeofXfrmUsersaInfo]...), attr(nl.XFRMA_ALG_AEAD, make([]byte, 10))...)
	var pol nl.XfrmUserpolicyInfo
	pol.Sel.Family = unix.AF_INET
	badTmpl := append(append([]byte{}, pol.Serialize()...), attr(nl.XFRMA_TMPL, make([]byte, nl.SizeofXfrmUserTmpl+3))...)
	for name, tc := range map[string]struct{ sas, pols [][]byte }{
		"short SA":           {[][]byte{good[1], short}, nil},
		"unknown family":     {[][]byte{badFamily}, nil},
		"truncated algo":     {[][]byte{truncAlgo}, nil},
		"truncated template": {nil, [][]byte{badTmpl}},
		"short policy":       {nil, [][]byte{pol.Serialize()[:10]}},
	} {
		_, err := readXfrm(fakeDump(tc.sas, tc.pols), noDev)
		if err == nil || !(strings.Contains(err.Error(), "SA ") || strings.Contains(err.Error(), "policy ")) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	boom := errors.New("boom")
	if _, err := readXfrm(func(uint16, func(uint16, []byte)) error { return boom }, noDev); !errors.Is(err, boom) {
		t.Errorf("dump failure: %v", err)
	}
}

// TestDecodeXfrmPolicySocket: a per-socket policy's dir is past
// XFRM_POLICY_MAX; the all-zero selector is any IPv4.
func TestDecodeXfrmPolicySocket(t *testing.T) {
	var pol nl.XfrmUserpolicyInfo
	pol.Dir, pol.Action, pol.Priority, pol.Index, pol.Flags = xfrmPolicyMax+1, 1, 9, 8, 3
	got, err := decodeXfrmPolicy(pol.Serialize(), noDev)
	want := topology.XfrmPolicy{Sel: topology.XfrmSelector{Src: netip.MustParsePrefix("0.0.0.0/0"), Dst: netip.MustParsePrefix("0.0.0.0/0")},
		Dir: topology.XfrmOut, Socket: true, Action: topology.XfrmBlock, Priority: 9, Index: 8, Flags: []string{"localok", "icmp"}}
	if d := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{})); err != nil || d != "" {
		t.Errorf("err %v (-want +got):\n%s", err, d)
	}
}

func FuzzDecodeXfrm(f *testing.F) {
	for _, m := range saMessages() {
		f.Add(m)
	}
	var pol nl.XfrmUserpolicyInfo
	pol.Sel.Family = unix.AF_INET6
	f.Add(append(pol.Serialize(), attr(nl.XFRMA_TMPL, make([]byte, nl.SizeofXfrmUserTmpl))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if s, err := decodeXfrmState(data, noDev); err == nil && (!s.Src.IsValid() || !s.Dst.IsValid()) {
			t.Fatalf("state %+v without error", s)
		}
		if p, err := decodeXfrmPolicy(data, noDev); err == nil && (!p.Sel.Src.IsValid() || !p.Sel.Dst.IsValid()) {
			t.Fatalf("policy %+v without error", p)
		}
	})
}

// TestReadXfrmGated: without xfrm_user the reader opens no socket (the
// NETLINK_XFRM socket would load it) and says so.
func TestReadXfrmGated(t *testing.T) {
	tg := goneTarget(&modGate{})
	_, err := kernelXfrm{}.ReadXfrm(tg)
	isAbsent(t, "xfrm", tg, err, "xfrm_user")
}
