package pcapio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/meshtrace/meshtrace/trace"
)

// ngReader reads a pcapng file's packets in place: each block's framing
// is checked by ngFraming (its lengths, as before), the block is peeked
// whole from the file's buffer and parsed there, without a copy or an
// allocation a packet. pcapgo's reader, which replay used before, costs
// five times the bare block walk (a read call per field through the
// framing check, every option copied); this is the walk plus the fields
// replay needs. It follows pcapgo's reading (ngread.go): section headers
// (byte order, version 1.0), interface blocks (link type, snap length,
// name, description, time resolution and offset), enhanced, simple and
// obsolete packet blocks (the epb_flags direction); other blocks are
// skipped. TestNgReaderMatchesPcapgo holds it to pcapgo's results.
type ngReader struct {
	fr      *ngFraming
	ifaces  []ngIntf
	scratch []byte // a block longer than the buffer
}

// ngIntf is what an interface block says.
type ngIntf struct {
	link       int
	snap       uint32
	name, desc string
	// timestamps: units a second, the scale to nanoseconds, the offset
	// in seconds
	perSec, up, down uint64
	offset           uint64
}

// ngPacket is one packet, its data valid until the next call.
type ngPacket struct {
	data  []byte
	iface int
	ts    int64
	dir   trace.Dir
}

// zeroTime is a simple packet's time (it has none), as pcapgo gives it.
var zeroTime = time.Time{}.UnixNano()

var errNgVersion = errors.New("unknown pcapng version in section header")

// newNgReader reads the first section header.
func newNgReader(br *bufio.Reader) (*ngReader, error) {
	r := &ngReader{fr: &ngFraming{r: br}}
	typ, body, err := r.block()
	if err != nil {
		return nil, err
	}
	if typ != magicPcapngBE {
		return nil, fmt.Errorf("%s: a pcapng file starts with a section header", r.fr.what())
	}
	return r, r.section(body)
}

// block returns the next block's type and body (between its length and
// the length repeated), valid until the next call; io.EOF at a clean end.
func (r *ngReader) block() (uint32, []byte, error) {
	c := r.fr
	if c.err != nil {
		return 0, nil, c.err
	}
	if err := c.next(); err != nil {
		c.err = err
		return 0, nil, err
	}
	n := int(c.length)
	b, err := c.r.Peek(n)
	if errors.Is(err, bufio.ErrBufferFull) {
		if cap(r.scratch) < n {
			r.scratch = make([]byte, n)
		}
		b = r.scratch[:n]
		if k, err := io.ReadFull(c.r, b); err != nil {
			c.off += int64(k)
			c.err = c.truncatedBy(err)
			return 0, nil, c.err
		}
	} else if len(b) < n {
		c.off += int64(len(b))
		c.err = c.truncatedBy(err)
		return 0, nil, c.err
	} else {
		c.r.Discard(n)
	}
	if t := c.order.Uint32(b[n-4:]); t != c.length {
		c.off += int64(n - 4)
		c.err = fmt.Errorf("%s: bad block length: it starts with length %d and ends with length %d: the file is damaged", c.what(), c.length, t)
		return 0, nil, c.err
	}
	c.off += int64(n)
	c.left = 0
	return c.typ, b[8 : n-4], nil
}

// section starts a section: its byte order (ngFraming read it) and
// version; the interfaces of the one before are gone.
func (r *ngReader) section(body []byte) error {
	// byte-order magic, major, minor, section length
	if len(body) < 16 {
		return fmt.Errorf("%s: too short", r.fr.what())
	}
	o := r.fr.order
	if o.Uint16(body[4:]) != 1 || o.Uint16(body[6:]) != 0 {
		return errNgVersion
	}
	r.ifaces = r.ifaces[:0]
	return nil
}

// options calls f with each option of a block's option list.
func (r *ngReader) options(b []byte, f func(code uint16, v []byte)) error {
	o := r.fr.order
	for len(b) >= 4 {
		code, n := o.Uint16(b), int(o.Uint16(b[2:]))
		b = b[4:]
		if code == 0 {
			if n != 0 {
				return errors.New("end of options must be zero length")
			}
			return nil
		}
		if n > len(b) {
			return fmt.Errorf("%s: option %d of %d bytes runs past the block", r.fr.what(), code, n)
		}
		f(code, b[:n])
		b = b[min(len(b), (n+3)&^3):]
	}
	return nil
}

func (r *ngReader) iface(body []byte) error {
	if len(body) < 8 {
		return fmt.Errorf("%s: too short", r.fr.what())
	}
	o := r.fr.order
	in := ngIntf{link: int(o.Uint16(body)), snap: o.Uint32(body[4:])}
	res := uint8(6)
	err := r.options(body[8:], func(code uint16, v []byte) {
		switch code {
		case 2:
			in.name = string(v)
		case 3:
			in.desc = string(v)
		case 9:
			if len(v) >= 1 {
				res = v[0]
			}
		case 14:
			if len(v) >= 8 {
				in.offset = o.Uint64(v)
			}
		}
	})
	if err != nil {
		return err
	}
	if res == 0 {
		res = 6
	}
	exp := res & 0x7f
	if exp > 63 {
		base := "10"
		if res&0x80 != 0 {
			base = "2"
		}
		return fmt.Errorf("timestamp resolution %s^-%d is too high", base, exp)
	}
	if res&0x80 != 0 {
		in.perSec = 1 << exp
	} else {
		in.perSec = 1
		for range exp {
			in.perSec *= 10
		}
	}
	in.up, in.down = 1, 1
	if in.perSec < 1e9 {
		in.up = 1e9 / in.perSec
	} else {
		in.down = in.perSec / 1e9
	}
	r.ifaces = append(r.ifaces, in)
	return nil
}

// time converts a packet's timestamp to Unix nanoseconds.
func (in *ngIntf) time(ts uint64) int64 {
	sec := int64(ts/in.perSec + in.offset)
	return sec*1e9 + int64(ts%in.perSec*in.up/in.down)
}

// next returns the next packet; io.EOF at a clean end.
func (r *ngReader) next() (ngPacket, error) {
	o := r.fr.order
	for {
		typ, b, err := r.block()
		if err != nil {
			return ngPacket{}, err
		}
		switch typ {
		case 6, 2: // enhanced packet, packet (obsolete)
			if len(b) < 20 {
				return ngPacket{}, fmt.Errorf("%s: too short", r.fr.what())
			}
			var p ngPacket
			if typ == 6 {
				p.iface = int(o.Uint32(b))
			} else {
				p.iface = int(o.Uint16(b))
			}
			if p.iface >= len(r.ifaces) {
				return ngPacket{}, fmt.Errorf("%s: interface %d not present in section (have only %d interfaces)", r.fr.what(), p.iface, len(r.ifaces))
			}
			in := &r.ifaces[p.iface]
			p.ts = in.time(uint64(o.Uint32(b[4:]))<<32 | uint64(o.Uint32(b[8:])))
			capLen := int(o.Uint32(b[12:]))
			if capLen > len(b)-20 {
				return ngPacket{}, fmt.Errorf("%s: %d bytes captured do not fit in the block", r.fr.what(), capLen)
			}
			p.data = b[20 : 20+capLen]
			if typ == 6 {
				err := r.options(b[min(len(b), 20+(capLen+3)&^3):], func(code uint16, v []byte) {
					if code == 2 && len(v) >= 4 {
						// read little-endian, as pcapgo does
						switch (uint32(v[0]) | uint32(v[1])<<8) & 3 {
						case 1:
							p.dir = trace.DirIn
						case 2:
							p.dir = trace.DirOut
						}
					}
				})
				if err != nil {
					return ngPacket{}, err
				}
			}
			return p, nil
		case 3: // simple packet: interface 0, no time
			if len(r.ifaces) == 0 {
				return ngPacket{}, errors.New("at least one interface is needed for a packet")
			}
			if len(b) < 4 {
				return ngPacket{}, fmt.Errorf("%s: too short", r.fr.what())
			}
			n := int(o.Uint32(b))
			if s := r.ifaces[0].snap; s != 0 && uint32(n) > s {
				n = int(s)
			}
			if n > len(b)-4 {
				return ngPacket{}, fmt.Errorf("%s: %d bytes captured do not fit in the block", r.fr.what(), n)
			}
			var zero ngPacket
			zero.ts = zeroTime
			zero.data = b[4 : 4+n]
			return zero, nil
		case 1:
			if err := r.iface(b); err != nil {
				return ngPacket{}, err
			}
		case magicPcapngBE:
			if err := r.section(b); err != nil {
				return ngPacket{}, err
			}
		}
	}
}
