package source

// needLinux: live reads work here.
func needLinux() error { return nil }
