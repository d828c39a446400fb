package pcapio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestReadPcapngBlockLengths: a damaged block length is named as such,
// never as a truncation; a file cut short is a truncation.
func TestReadPcapngBlockLengths(t *testing.T) {
	good := writeNg(t, meshCapture(t))
	shb := int(binary.LittleEndian.Uint32(good[4:8]))
	// The block after the section header (an interface description),
	// and the first enhanced packet block some blocks later.
	second := shb
	epb := -1
	for off := shb; off+8 <= len(good); off += int(binary.LittleEndian.Uint32(good[off+4:])) {
		if binary.LittleEndian.Uint32(good[off:]) == 6 {
			epb = off
			break
		}
	}
	if epb < 0 {
		t.Fatal("no enhanced packet block in the test capture")
	}
	with := func(off int, length uint32) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[off+4:], length)
		return b
	}
	trailer := bytes.Clone(good)
	n := binary.LittleEndian.Uint32(good[epb+4:])
	binary.LittleEndian.PutUint32(trailer[epb+int(n)-4:], n+4)

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"zero", with(epb, 0), "bad block length 0"},
		{"four", with(epb, 4), "bad block length 4"},
		{"odd", with(epb, 101), "bad block length 101"},
		{"huge", with(epb, 0xfffffff0), "bad block length 4294967280"},
		{"zero in an interface block", with(second, 0), "bad block length 0"},
		{"huge section header", with(0, 0x7ffffff0), "bad block length 2147483632"},
		{"trailer differs", trailer, "ends with length"},
		{"cut short", good[:epb+20], "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd := &Reader{}
			err := rd.Read("bad.pcapng", bytes.NewReader(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "bad.pcapng") {
				t.Fatalf("error %v, want it to name bad.pcapng and say %q", err, tc.want)
			}
			if testing.Verbose() {
				t.Log(err)
			}
			if tc.want != "truncated" && (strings.Contains(err.Error(), "truncated") || strings.Contains(err.Error(), "unexpected EOF")) {
				t.Errorf("a bad block length reported as a truncation: %v", err)
			}
		})
	}
}

// garbagePcap is a pcap whose frames are random bytes.
func garbagePcap(t testing.TB, n int) []byte {
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < n; i++ {
		d := make([]byte, 20+rng.Intn(200))
		rng.Read(d)
		d[12], d[13] = 0x86, 0xdd // IPv6: never IPv4 by chance
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(d), Length: len(d)}, d)
	}
	return b.Bytes()
}

// TestReplayNothingAnalysable: a capture without one IPv4 TCP/UDP frame
// is an error saying what was ignored and why, not "0 flow(s)".
func TestReplayNothingAnalysable(t *testing.T) {
	var header bytes.Buffer
	pcapgo.NewWriter(&header).WriteFileHeader(65535, layers.LinkTypeEthernet)
	for _, tc := range []struct {
		name string
		data []byte
		want []string
	}{
		{"random frames", garbagePcap(t, 50), []string{"garbage.pcap", "50 frames", "50 not IPv4"}},
		{"no frame", header.Bytes(), []string{"garbage.pcap", "no frame"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd := &Reader{}
			if err := rd.Read("garbage.pcap", bytes.NewReader(tc.data)); err != nil {
				t.Fatal(err)
			}
			res, err := analyse("garbage.pcap", tc.data)
			if err == nil || res.Error == "" {
				t.Fatalf("nothing analysable read as success: %d flows, error %v", len(res.Flows), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestReadFileRefusesNonRegular: a FIFO or a device as a capture file is
// refused at once, naming it.
func TestReadFileRefusesNonRegular(t *testing.T) {
	fifo := t.TempDir() + "/cap.pcap"
	if err := mkfifo(fifo); err != nil {
		t.Skip(err)
	}
	for _, p := range []string{fifo, "/dev/zero", "/dev/urandom"} {
		done := make(chan error, 1)
		go func() { done <- (&Reader{}).ReadFile(p) }()
		select {
		case err := <-done:
			var fe *FileError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s: %v, want it refused as not a regular file", p, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: reading hangs", p)
		}
	}
}
