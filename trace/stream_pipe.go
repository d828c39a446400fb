package trace

import (
	"context"
	"io"
	"slices"
	"sync"
)

// The stream without live hooks (replay's: no After, Updates or
// Counted) runs its correlation in a goroutine of its own, so that
// correlating the frames and explaining and writing the flows that ended
// use both cores (the source reads ahead in a third, pcapio.Prefetch).
// The events and their order are those of run.

// pipeItem is a flow that ended, or a Progress to emit.
type pipeItem struct {
	c    *Conn
	prog Progress
}

// pipeBatch is what the correlation hands over at a time: flows that
// ended (cut: after the source failed) and progress, in order; the last
// one carries the source's end.
type pipeBatch struct {
	items  []pipeItem
	points []Point
	cut    bool
	last   bool
	err    error
}

const pipeBatchLen = 64

func (s *streamer) runPiped(ctx context.Context) {
	out := make(chan pipeBatch, 4)
	free := make(chan []pipeItem, 6)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(out)
		s.correlate(ctx, out, free, quit)
	}()
	var err error
	for b := range out {
		if len(b.items) > 0 {
			s.a.Points = b.points
		}
		for _, it := range b.items {
			if it.c == nil {
				s.emit(it.prog)
				continue
			}
			if fl, ok := s.flow(it.c, !b.cut); ok {
				s.endFlow(fl, it.c)
			}
		}
		if s.stop {
			break
		}
		select {
		case free <- b.items[:0]:
		default:
		}
		if b.last {
			err = b.err
		}
	}
	close(quit)
	wg.Wait() // the source is the goroutine's until it is done
	if s.stop {
		return
	}
	s.done(&Result{Proto: s.cfg.Proto, Port: s.cfg.Port, Notes: slices.Clone(s.cfg.Notes)}, err)
}

// correlate is run's loop for runPiped's goroutine: it hands the flows
// that ended over in batches.
func (s *streamer) correlate(ctx context.Context, out chan<- pipeBatch, free chan []pipeItem, quit <-chan struct{}) bool {
	var b pipeBatch
	cut := false
	send := func() bool {
		b.points, b.cut = s.src.Points(), cut
		select {
		case out <- b:
		case <-quit:
			return false
		}
		b = pipeBatch{}
		select {
		case b.items = <-free:
		default:
		}
		return true
	}
	// A sweep may end thousands of flows at once: they go over 64 at a
	// time, so that few wait between the two goroutines.
	take := func() bool {
		for _, c := range s.cr.Take() {
			b.items = append(b.items, pipeItem{c: c})
			if len(b.items) >= pipeBatchLen && !send() {
				return false
			}
		}
		return true
	}
	var err error
	for {
		if err = s.feed(ctx); err != nil {
			break
		}
		if !take() {
			return false
		}
		if s.nFrames&0xffff == 0 || s.cr.Now() >= s.progress {
			s.progress = s.cr.Now() + int64(progressEvery)
			b.items = append(b.items, pipeItem{prog: Progress{Frames: s.nFrames, Ignored: s.src.Ignored(), Now: tsTime(s.cr.Now())}})
			if !send() { // progress shows as it is made
				return false
			}
		}
	}
	err = endErr(err)
	if len(b.items) > 0 && !send() {
		return false
	}
	s.cr.Flush()
	cut = s.cutBy(ctx, err)
	if !take() {
		return false
	}
	b.last, b.err = true, err
	return send()
}

// endErr is the error that ended a source: none at its end (a file error
// may wrap io.EOF: it is no end).
func endErr(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}

// cutBy: the source failed (not the context): the flows in flight then
// are not over.
func (s *streamer) cutBy(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil
}
