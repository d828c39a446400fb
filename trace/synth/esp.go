package synth

import (
	"encoding/binary"
	"net/netip"
)

// ESPSizes are what an SA's algorithm adds around ESP's plaintext: IV,
// alignment of plaintext + 2 trailer bytes, ICV. Docker's
// rfc4106(gcm(aes)) with a 64-bit ICV is GCM.
type ESPSizes struct{ IV, Align, ICV int }

// GCM is rfc4106(gcm(aes)) with a 64-bit ICV, as Docker programs it.
var GCM = ESPSizes{IV: 8, Align: 4, ICV: 8}

// ESP renders an IPv4 ESP packet (protocol 50, ID 0 and DF as the
// kernel's transport mode keeps them from the packet it encrypts) with
// SPI and sequence number, carrying plain bytes of plaintext the way
// esp4 pads it; IV, ciphertext and ICV are filler bytes (no key).
func ESP(src, dst netip.Addr, id uint16, spi, seq uint32, plain int, z ESPSizes) []byte {
	body := plain + 2
	if r := body % z.Align; r != 0 {
		body += z.Align - r
	}
	n := 20 + 8 + z.IV + body + z.ICV
	ip := make([]byte, n)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(n))
	binary.BigEndian.PutUint16(ip[4:], id)
	ip[8] = 64
	ip[9] = 50
	s, d := src.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip[:20]))
	binary.BigEndian.PutUint32(ip[20:], spi)
	binary.BigEndian.PutUint32(ip[24:], seq)
	for i := 28; i < n; i++ {
		ip[i] = byte(i*31) ^ byte(seq)
	}
	return ip
}

// Encryption makes a Conn's underlay legs ESP, as an encrypted overlay
// sends them: node0 -> node1 through SA SPI0, node1 -> node0 through
// SPI1, each numbering its packets from Seq0 and Seq1 on (shared by
// the connections that point to it, as an SA is).
type Encryption struct {
	SPI0, SPI1 uint32
	Seq0, Seq1 uint32
	Sizes      ESPSizes
}

// esp renders the ESP packet of a VXLAN datagram (an IPv4 packet from
// VXLAN) from a to b, numbering it in its SA.
func (e *Encryption) esp(a, b netip.Addr, vxlan []byte) []byte {
	udp := len(vxlan) - 20
	spi, seq := e.SPI0, &e.Seq0
	if a == Node1IP {
		spi, seq = e.SPI1, &e.Seq1
	}
	*seq++
	return ESP(a, b, 0, spi, *seq, udp, e.Sizes)
}
