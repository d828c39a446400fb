package trace

import (
	"strings"
	"testing"
	"time"
)

// TestClockShifts: node b's clock runs 540 ms ahead of a's, the transit is
// 300 µs one way and 500 µs the other; the ESP packets both underlays saw
// give the skew to within the transits' difference, and only from
// packets both ways (one way cannot tell skew from transit).
func TestClockShifts(t *testing.T) {
	const ahead = 540 * time.Millisecond
	s := &Survey{}
	a, b := Point{Node: "a", Netns: "host", Ifname: "eth0"}, Point{Node: "b", Netns: "host", Ifname: "eth0"}
	sight := func(p Point, spi, seq uint32, ts int64, dir Dir) {
		f := &Frame{TS: ts, Dir: dir}
		f.Pkt.Proto = ProtoESP
		f.ESP = ESP{SPI: spi, Seq: seq}
		s.Add(p, f)
	}
	t0 := int64(1_700_000_000_000_000_000)
	for i := range uint32(5) {
		ts := t0 + int64(i)*int64(time.Second)
		sight(a, 0xa, i, ts, DirOut) // a -> b: 300 µs
		sight(b, 0xa, i, ts+int64(300*time.Microsecond+ahead), DirIn)
	}
	if got := s.ClockShifts(); len(got) != 0 {
		t.Fatalf("one way only: %+v", got)
	}
	for i := range uint32(5) {
		ts := t0 + int64(i)*int64(time.Second) + int64(time.Millisecond)
		sight(b, 0xb, i, ts+int64(ahead), DirOut) // b -> a: 500 µs
		sight(a, 0xb, i, ts+int64(500*time.Microsecond), DirIn)
		sight(a, 0xb, i, ts+int64(510*time.Microsecond), DirIn) // a second point of a: not counted twice
	}
	got := s.ClockShifts()
	if len(got) != 1 || got[0].Node != "b" || got[0].Ref != "a" || got[0].To != 5 || got[0].From != 5 {
		t.Fatalf("shifts %+v", got)
	}
	if d := got[0].Ahead - ahead; d < -100*time.Microsecond || d > 100*time.Microsecond {
		t.Errorf("ahead %v, want %v within the transits' difference", got[0].Ahead, ahead)
	}
	if !strings.Contains(got[0].String(), "runs 539.9ms ahead of a's") {
		t.Errorf("note %q", got[0].String())
	}
}
