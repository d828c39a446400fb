//go:build !linux

package capture

import (
	"fmt"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
)

// ChecksumWatch stands in for the Linux checksum capture.
type ChecksumWatch struct{}

// WatchChecksums says it needs Linux.
func WatchChecksums([]trace.Point, kmod.Gate) (*ChecksumWatch, error) {
	return nil, fmt.Errorf("checksum capture: %w", errNotLinux)
}

// Stop returns nothing.
func (*ChecksumWatch) Stop() []topology.ChecksumSighting { return nil }
