//go:build linux

package nft

import (
	"runtime"
	"sync"

	"github.com/meshtrace/meshtrace/topology"
)

// ReadAll reads many namespaces with Read, at most parallel at a time
// (<= 0: 4 x GOMAXPROCS). The results are in the order of nsPaths; errs[i]
// is Read's error for nsPaths[i] (an ErrLegacy one means: exec
// iptables-save there).
func ReadAll(nsPaths []string, parallel int) (fws []*topology.Firewall, errs []error) {
	if parallel <= 0 {
		parallel = 4 * runtime.GOMAXPROCS(0)
	}
	fws, errs = make([]*topology.Firewall, len(nsPaths)), make([]error, len(nsPaths))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < parallel && w < len(nsPaths); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fws[i], errs[i] = Read(nsPaths[i])
			}
		}()
	}
	for i := range nsPaths {
		next <- i
	}
	close(next)
	wg.Wait()
	return fws, errs
}
