package trace

import (
	"net/netip"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/trace/synth"
)

func TestFlowMidstream(t *testing.T) {
	// The capture starts as one connection closes: it holds that
	// connection's last ACK only, then a whole connection. The first is
	// midstream (neither complete nor stopped), the second complete.
	old := framesOf(t, synth.HTTPConn(40000, false, 0, 1000))
	var last []Frame
	lastTS := old[len(old)-1].TS
	for _, f := range old {
		if f.TS > lastTS-int64(30*time.Microsecond) && f.Pkt.Flags&(FlagSYN|FlagFIN) == 0 && f.Pkt.Len == 0 {
			last = append(last, f)
		}
	}
	if len(last) == 0 {
		t.Fatal("no final ACK in the synthetic connection")
	}
	frames := append(last, framesOf(t, synth.HTTPConn(40001, false, time.Second, 5000))...)
	a := &Analysis{Points: PointsOf(synth.MeshPoints)}
	flows := a.Flows(Correlate(frames, Options{ServerPorts: []uint16{8080, 80}}))
	if len(flows) != 2 {
		t.Fatalf("%d flows, want 2", len(flows))
	}
	if f := flows[0]; !f.Midstream || f.Complete || f.Stop != nil {
		t.Errorf("the closing connection's last ACK: midstream %v complete %v stop %+v; want midstream, not complete, no stop", f.Midstream, f.Complete, f.Stop)
	}
	if f := flows[1]; f.Midstream || !f.Complete {
		t.Errorf("the whole connection: midstream %v complete %v; want complete", f.Midstream, f.Complete)
	}
	// A connection seen from its SYN is not midstream, even when it
	// does not complete.
	syn := framesOf(t, synth.HTTPConn(40002, false, 0, 9000))[:1]
	if f := a.Flows(Correlate(syn, Options{ServerPorts: []uint16{8080}}))[0]; f.Midstream {
		t.Error("a SYN alone is midstream")
	}
	// A UDP answer whose request went out before the capture.
	mac := synth.MAC(netip.MustParseAddr("10.0.0.2"))
	r := synth.Pkt{Src: netip.MustParseAddrPort("10.0.0.8:5353"), Dst: netip.MustParseAddrPort("10.0.0.2:5000"), Proto: synth.UDP, Payload: []byte("answer")}
	var f Frame
	if err := Decode(LinkEthernet, synth.Ether(mac, mac, r.IPv4()), &f); err != nil {
		t.Fatal(err)
	}
	f.Point = 5
	if fl := a.Flows(Correlate([]Frame{f}, Options{ServerPorts: []uint16{5353}}))[0]; !fl.Midstream {
		t.Error("a UDP answer without its request is not midstream")
	}
}
