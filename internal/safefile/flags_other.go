//go:build !unix

package safefile

import "io/fs"

const (
	oNonblock = 0
	oNoctty   = 0
	oNofollow = 0
)

func owner(fs.FileInfo) (int, bool) { return 0, false }

func euid() int { return -1 }
