package main

import (
	"runtime/debug"
	"strings"
)

// version is the module version, or the commit it was built from (with
// "+dirty" for a modified tree), as the Go toolchain recorded it.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" && (v == "" || v == "(devel)" || strings.HasPrefix(v, "v0.0.0-")) {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return rev + dirty
	}
	if v == "" {
		return "(devel)"
	}
	return v
}

func init() {
	root.Version = version()
	root.SetVersionTemplate("meshtrace {{.Version}}\n")
}
