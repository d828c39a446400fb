//go:build !linux

package inspect

import "github.com/meshtrace/meshtrace/topology"

type noXfrm struct{}

func (noXfrm) ReadXfrm(*Target) (*topology.Xfrm, error) { return nil, errNotLinux }

func newXfrmReader() XfrmReader { return noXfrm{} }

type noCounters struct{}

func (noCounters) ReadCounters(*Target) (*topology.Counters, error) { return nil, errNotLinux }

func newCountersReader() CountersReader { return noCounters{} }
