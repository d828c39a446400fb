package inspect

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// diagReply builds a sock_diag dump reply the way the kernel lays it out:
// nlmsghdr + struct inet_diag_msg (ports and addresses big endian), then
// NLMSG_DONE.
func diagReply(family uint8, state uint8, src netip.Addr, sport, dport uint16) []byte {
	msg := make([]byte, sizeofInetDiagMsg)
	msg[0], msg[1] = family, state
	binary.BigEndian.PutUint16(msg[4:], sport)
	binary.BigEndian.PutUint16(msg[6:], dport)
	copy(msg[8:24], src.AsSlice())
	var b []byte
	hdr := func(typ uint16, payload []byte) {
		h := make([]byte, unix.SizeofNlMsghdr)
		binary.NativeEndian.PutUint32(h[0:], uint32(unix.SizeofNlMsghdr+len(payload)))
		binary.NativeEndian.PutUint16(h[4:], typ)
		binary.NativeEndian.PutUint16(h[6:], unix.NLM_F_MULTI)
		binary.NativeEndian.PutUint32(h[8:], 7)
		b = append(b, h...)
		b = append(b, payload...)
	}
	hdr(sockDiagByFamily, msg)
	hdr(unix.NLMSG_DONE, make([]byte, 4))
	return b
}

func TestDecodeSockDiag(t *testing.T) {
	for _, tc := range []struct {
		family uint8
		src    netip.Addr
		want   netip.Addr
	}{
		{unix.AF_INET, netip.MustParseAddr("10.0.0.4"), netip.MustParseAddr("10.0.0.4")},
		{unix.AF_INET6, netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fe80::1")},
		{unix.AF_INET6, netip.MustParseAddr("::ffff:172.18.0.3"), netip.MustParseAddr("172.18.0.3")},
	} {
		msgs, err := parseNetlink(diagReply(tc.family, tcpListen, tc.src, 8080, 0))
		if err != nil || len(msgs) != 2 {
			t.Fatalf("parse: %v, %d messages", err, len(msgs))
		}
		if msgs[0].Header.Seq != 7 || msgs[1].Header.Type != unix.NLMSG_DONE {
			t.Errorf("headers %+v %+v", msgs[0].Header, msgs[1].Header)
		}
		d, ok := decodeDiagMsg(msgs[0].Data)
		if !ok || d.src != tc.want || d.sport != 8080 || d.dport != 0 || d.state != tcpListen {
			t.Errorf("%v: decoded %+v %v", tc.src, d, ok)
		}
	}
}

func TestDecodeSockDiagGarbage(t *testing.T) {
	full := diagReply(unix.AF_INET, tcpListen, netip.MustParseAddr("10.0.0.4"), 80, 0)
	if _, err := parseNetlink(full[:20]); err == nil {
		t.Error("a truncated message parsed")
	}
	msgs, err := parseNetlink(full[:unix.SizeofNlMsghdr])
	if err == nil && len(msgs) > 0 {
		if _, ok := decodeDiagMsg(msgs[0].Data); ok {
			t.Error("a message without body decoded")
		}
	}
	bad := diagReply(99, tcpListen, netip.MustParseAddr("10.0.0.4"), 80, 0)
	msgs, _ = parseNetlink(bad)
	if _, ok := decodeDiagMsg(msgs[0].Data); ok {
		t.Error("unknown address family decoded")
	}
}

func FuzzParseSockDiag(f *testing.F) {
	f.Add(diagReply(unix.AF_INET, tcpListen, netip.MustParseAddr("10.0.0.4"), 80, 0))
	f.Add(diagReply(unix.AF_INET6, tcpClose, netip.MustParseAddr("::1"), 53, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := parseNetlink(b)
		if err != nil {
			return
		}
		for _, m := range msgs {
			decodeDiagMsg(m.Data)
		}
	})
}
