package probe

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
)

// A lookup from inside a namespace, over UDP and TCP, to a server that
// answers one name; a closed port is refused.
func TestLookup(t *testing.T) {
	path := testutil.Netns(t)
	var (
		pc net.PacketConn
		ln net.Listener
	)
	err := netnsx.Do(path, func() (err error) {
		if pc, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			return err
		}
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		r := new(dns.Msg).SetReply(q)
		if q.Question[0].Name == "web." {
			r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: "web.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.IPv4(10, 0, 0, 4)})
		} else {
			r.SetRcode(q, dns.RcodeServerFailure)
		}
		w.WriteMsg(r)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	udp := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	tcp := ln.Addr().(*net.TCPAddr).AddrPort()
	for _, q := range []Query{{Netns: path, Proto: "udp", Server: udp, Name: "web"}, {Netns: path, Proto: "tcp", Server: tcp, Name: "web."}} {
		r, err := Lookup(ctxFor(t, 5*time.Second), q)
		if err != nil || r.Rcode != "NOERROR" || len(r.Addrs) != 1 || r.Addrs[0] != netip.MustParseAddr("10.0.0.4") {
			t.Errorf("%s: %+v %v", q.Proto, r, err)
		}
	}
	if r, err := Lookup(ctxFor(t, 5*time.Second), Query{Netns: path, Server: udp, Name: "nope"}); err != nil || r.Rcode != "SERVFAIL" || r.Addrs != nil {
		t.Errorf("unknown name: %+v %v", r, err)
	}
	closed := netip.AddrPortFrom(udp.Addr(), tcp.Port()) // no UDP socket there
	if _, err := Lookup(ctxFor(t, 5*time.Second), Query{Netns: path, Server: closed, Name: "web"}); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("closed port: %v", err)
	}
}
