package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/pcapio"
)

// pcapStream is `trace --pcap -`: the capture as pcapng on w frame by
// frame, for `| wireshark -k -i -` or `| tshark -r -`. Its interface
// blocks are the capture plan's points, each named by its hop
// ("ingress_sbox/eth1", "node1/1-c5h7abz82p/vxlan0"; the plan capture.Run
// makes from the same env and client), written at once so the reader
// starts before the first packet; tee writes each frame as the capture
// hands it out (capture.Options.Tee), flushed, without the per-packet
// comments a --pcap file gets at the end (its flows are not known yet).
// err says the first write that failed; later frames are dropped.
type pcapStream struct {
	mu  sync.Mutex
	w   *pcapio.NgWriter
	err error
}

func newPcapStream(w io.Writer, env *trace.Env, client *trace.Client) (*pcapStream, error) {
	plan, err := trace.Plan(env, client)
	if err != nil {
		return nil, err
	}
	nw, err := pcapio.NewNgWriter(w, env.Primary(), plan.Points)
	if err != nil {
		return nil, fmt.Errorf("--pcap -: %w", err)
	}
	if err := nw.Flush(); err != nil {
		return nil, fmt.Errorf("--pcap -: %w", err)
	}
	return &pcapStream{w: nw}, nil
}

func (s *pcapStream) tee(f *trace.Frame, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	if _, err := s.w.Write(f, data, ""); err != nil {
		s.err = err
	} else {
		s.err = s.w.Flush()
	}
}

// Err is the first write error, wrapped as --pcap -'s.
func (s *pcapStream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return fmt.Errorf("--pcap -: standard output: %w", s.err)
	}
	return nil
}
