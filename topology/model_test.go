package topology

import (
	"encoding/json"
	"net/netip"
	"testing"
)

// TestRouteJSONRoundTrip: a route reads back from what inspect -o json
// writes, the default route ("default") included.
func TestRouteJSONRoundTrip(t *testing.T) {
	for _, r := range []Route{
		{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gateway: netip.MustParseAddr("192.0.2.1"), Dev: "eth0"},
		{Dst: netip.MustParsePrefix("10.0.0.0/24"), Dev: "br0", Src: netip.MustParseAddr("10.0.0.2"), Table: 254},
	} {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var got Route
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got != r {
			t.Errorf("%s read back as %+v, want %+v", b, got, r)
		}
	}
	var r Route
	if err := json.Unmarshal([]byte(`{"dst":"nonsense"}`), &r); err == nil {
		t.Error(`dst "nonsense" read without an error`)
	}
}
