package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"

	"github.com/meshtrace/meshtrace/inspect/nft"
	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/topology"
)

// kernelFirewall reads rulesets with the nf_tables reader (package nft) or
// by running iptables-save -c inside the namespace. Both ask the module
// gate first: the nf_tables reader and iptables-nft-save load nfnetlink and
// nf_tables (kmod.NeedNFTables).
type kernelFirewall struct {
	// run runs bin with args inside the namespace at nsPath ("": ours)
	// and look finds an installed command; nil: the real ones (netnsx,
	// exec.LookPath). The tests' seams.
	run  func(nsPath, bin string, args ...string) (stdout, stderr []byte, err error)
	look func(name string) (string, error)
}

var _ FirewallReader = kernelFirewall{}

// nftRead is nft.Read, a variable so a build without it still links.
var nftRead, nftReadOpened = nft.Read, nft.ReadOpened

func (kernelFirewall) ReadNetlink(t *Target) (*topology.Firewall, error) {
	if err := kmod.NeedNFTables.Check(t.gate()); err != nil {
		return nil, err
	}
	if o := t.res.nft; o != nil {
		// the socket and legacy check made when the sockets were opened:
		// no second visit of the namespace
		return nftReadOpened(t.Path, o, nlTimeout)
	}
	return nftRead(t.Path)
}

// ReadExec runs iptables-save -c in t and parses its output; errors and
// unparsed lines name "netns NAME: iptables-save". For backend "legacy"
// iptables-legacy-save is preferred when installed: on a host whose
// iptables is the nf_tables variant, plain iptables-save does not show
// legacy tables, it only warns that they exist. On that warning a
// namespace with no nf_tables rules is read again with
// iptables-legacy-save; one with both keeps the warning in Unparsed.
// Without nf_tables only a legacy variant runs (see saveBin).
func (k kernelFirewall) ReadExec(t *Target, backend topology.FirewallBackend) (*topology.Firewall, error) {
	file := fmt.Sprintf("netns %s: iptables-save", t.Name)
	bin, legacyBin, err := k.saveBin(t, backend)
	if err != nil {
		return nil, err
	}
	out, stderr, err := k.save(t, bin)
	if err != nil {
		return nil, err
	}
	fw, err := parse.IptablesSave(file, bytes.NewReader(out))
	if err != nil {
		return nil, err
	}
	if warn := legacyWarning(stderr); warn != "" {
		if len(fw.Tables) == 0 && legacyBin != "" {
			return k.readLegacy(t, file, legacyBin)
		}
		fw.Unparsed = append(fw.Unparsed, topology.Unparsed{File: file, Text: warn,
			Reason: "legacy x_tables rules are present too; iptables-save (nf_tables) does not show them"})
	}
	if fw.Backend == "" && backend != "" {
		fw.Backend = backend
	}
	return fw, nil
}

// saveBin chooses the iptables-save to run, and finds iptables-legacy-save
// ("" when not installed). With nf_tables loaded: iptables-legacy-save for
// backend "legacy" when installed, else iptables-save. Without it no rule
// can be an nf_tables one, and iptables-nft-save would load nfnetlink and
// nf_tables: then a legacy variant, which reads the tables
// /proc/net/ip_tables_names lists and loads nothing (iptables-save.c,
// for_each_table): iptables-legacy-save, or iptables-save when `-V` says
// it is legacy; else the gate's error.
func (k kernelFirewall) saveBin(t *Target, backend topology.FirewallBackend) (bin, legacyBin string, err error) {
	look := k.look
	if look == nil {
		look = exec.LookPath
	}
	legacyBin, lerr := look("iptables-legacy-save")
	if lerr != nil {
		legacyBin = ""
	}
	gerr := kmod.NeedNFTables.Check(t.gate())
	switch {
	case legacyBin != "" && (backend == topology.BackendLegacy || gerr != nil):
		return legacyBin, legacyBin, nil
	case gerr == nil:
		return "iptables-save", legacyBin, nil
	}
	if nft, verr := k.nftVariant("iptables-save"); verr != nil || nft {
		return "", "", gerr
	}
	return "iptables-save", "", nil
}

// variants remembers nftVariant's answers by command: one question per
// process.
var variants sync.Map

// nftVariant reports whether bin is iptables' nf_tables variant, from its
// `-V` (run in our namespace: it is the binary's answer).
func (k kernelFirewall) nftVariant(bin string) (bool, error) {
	if v, ok := variants.Load(bin); ok {
		return v.(bool), nil
	}
	out, _, err := k.exec("", bin, "-V")
	if err != nil {
		return false, err
	}
	nft := nftVariant(out)
	variants.Store(bin, nft)
	return nft, nil
}

func (k kernelFirewall) readLegacy(t *Target, file, bin string) (*topology.Firewall, error) {
	out, _, err := k.save(t, bin)
	if err != nil {
		return nil, err
	}
	fw, err := parse.IptablesSave(file, bytes.NewReader(out))
	if err != nil {
		return nil, err
	}
	fw.Backend = "legacy"
	return fw, nil
}

// save runs `bin -c` inside t and returns its stdout and stderr.
func (k kernelFirewall) save(t *Target, bin string) ([]byte, []byte, error) {
	return k.exec(t.Path, bin, "-c")
}

func (k kernelFirewall) exec(nsPath, bin string, args ...string) ([]byte, []byte, error) {
	if k.run != nil {
		return k.run(nsPath, bin, args...)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	out, err := netnsx.Output(nsPath, cmd)
	if err != nil {
		call := strings.Join(append([]string{bin}, args...), " ")
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, nil, fmt.Errorf("%s: %w: %s", call, err, strings.TrimSpace(stderr.String()))
		}
		return nil, nil, fmt.Errorf("%s: %w", call, err)
	}
	return out, stderr.Bytes(), nil
}
