//go:build !linux

package dockerns

import "errors"

var errUnsupported = errors.New("dockerns: a world of network namespaces needs Linux")

// netnsFile is a namespace of a world; there are none without Linux.
type netnsFile struct{ name string }

// Build fails: a world is made of Linux network namespaces.
func Build(Options) (*World, error) { return nil, errUnsupported }

// Close has nothing to remove.
func (w *World) Close() error { return nil }

// Leftovers finds nothing: no world was built.
func Leftovers(string) ([]string, error) { return nil, nil }
