package mesh

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

func TestDNSNames(t *testing.T) {
	st := testPlan(t, 2, LBIptables, "web:8080:80x2", "db:dnsrr:5432x3").State()
	web, db := st.Services[0], st.Services[1]
	names := newDNSNames(st)
	ips := func(ts []TaskState) []netip.Addr {
		var out []netip.Addr
		for _, t := range ts {
			out = append(out, t.IP)
		}
		return out
	}
	for _, tc := range []struct {
		q     string
		qtype uint16
		rcode int
		want  []netip.Addr
	}{
		{"web", dns.TypeA, dns.RcodeSuccess, []netip.Addr{web.VIP}},
		{"WEB.", dns.TypeA, dns.RcodeSuccess, []netip.Addr{web.VIP}},
		{"tasks.web", dns.TypeA, dns.RcodeSuccess, ips(web.Tasks)},
		{"db", dns.TypeA, dns.RcodeSuccess, ips(db.Tasks)},
		{"tasks.db", dns.TypeA, dns.RcodeSuccess, ips(db.Tasks)},
		{"web.2", dns.TypeA, dns.RcodeSuccess, []netip.Addr{web.Tasks[1].IP}},
		{"web", dns.TypeAAAA, dns.RcodeSuccess, nil},
		{"web", dns.TypeMX, dns.RcodeServerFailure, nil},
		{"example.com", dns.TypeA, dns.RcodeServerFailure, nil},
		{"tasks.nope", dns.TypeA, dns.RcodeServerFailure, nil},
	} {
		q := new(dns.Msg).SetQuestion(dns.Fqdn(tc.q), tc.qtype)
		r := names.answer(q, "udp")
		var got []netip.Addr
		for _, rr := range r.Answer {
			a, ok := rr.(*dns.A)
			if !ok || rr.Header().Ttl != dnsTTL || rr.Header().Name != q.Question[0].Name {
				t.Fatalf("%s: answer %v", tc.q, rr)
			}
			ip, _ := netip.AddrFromSlice(a.A)
			got = append(got, ip.Unmap())
		}
		slices.SortFunc(got, netip.Addr.Compare)
		want := slices.SortedFunc(slices.Values(tc.want), netip.Addr.Compare)
		if r.Rcode != tc.rcode || !slices.Equal(got, want) || r.Id != q.Id || !r.Response {
			t.Errorf("%s %s: rcode %s answers %v, want %s %v", tc.q, dns.TypeToString[tc.qtype], dns.RcodeToString[r.Rcode], got, dns.RcodeToString[tc.rcode], want)
		}
	}
	if st.Services[1].VIP.IsValid() || names.Lookup("db") == nil {
		t.Errorf("dnsrr service has VIP %s", st.Services[1].VIP)
	}
	if r := names.answer(new(dns.Msg), "udp"); r.Rcode != dns.RcodeFormatError {
		t.Errorf("no question: %s", dns.RcodeToString[r.Rcode])
	}
}

// A name with more addresses than fit in 512 bytes is truncated over UDP
// and whole over TCP.
func TestDNSTruncates(t *testing.T) {
	st := testPlan(t, 2, LBIptables, "big:dnsrr:80x120").State()
	names := newDNSNames(st)
	q := new(dns.Msg).SetQuestion("big.", dns.TypeA)
	udp, tcp := names.answer(q, "udp"), names.answer(q, "tcp")
	if !udp.Truncated || len(udp.Answer) >= 120 || udp.Len() > dns.MinMsgSize {
		t.Errorf("udp: truncated %v, %d answers, %d bytes", udp.Truncated, len(udp.Answer), udp.Len())
	}
	if tcp.Truncated || len(tcp.Answer) != 120 {
		t.Errorf("tcp: truncated %v, %d answers", tcp.Truncated, len(tcp.Answer))
	}
}
