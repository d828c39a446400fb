package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/meshtrace/meshtrace/topology"
)

// The ranges of the numeric flags. A value outside is refused when the
// flag is parsed, before the command runs, with the range in the message
// (`invalid argument "-1s" for "--timeout" flag: must be 100ms-24h0m0s`).
// A flag's default is always accepted (0 often means "not set" or "the
// default"), and said in the message when it lies outside the range.
var (
	portRange      = intRange{lo: 1, hi: 65535}
	countRange     = intRange{lo: 0, hi: 100_000}
	ringKBRange    = intRange{lo: 128, hi: 128 << 10} // per socket: 128 KiB to 128 MiB
	probeCountRng  = intRange{lo: 1, hi: 1000}
	captureTimeout = durationRange{lo: 100 * time.Millisecond, hi: 24 * time.Hour}
	probeTimeout   = durationRange{lo: 100 * time.Millisecond, hi: 5 * time.Minute}
	keepAliveRange = durationRange{lo: time.Second, hi: 30 * 24 * time.Hour}
	intervalRange  = durationRange{lo: time.Second, hi: 24 * time.Hour, zero: "never"}
)

type intRange struct{ lo, hi int }

// durationRange is lo-hi, and 0 too when zero names what 0 means.
type durationRange struct {
	lo, hi time.Duration
	zero   string
}

// intFlag defines an int flag that only takes def or a value in r.
func intFlag(f *pflag.FlagSet, p *int, name string, def int, r intRange, usage string) {
	*p = def
	f.Var(&rangedInt{p: p, def: def, r: r}, name, usage)
}

// durationFlag defines a duration flag that only takes def or a value in r.
func durationFlag(f *pflag.FlagSet, p *time.Duration, name string, def time.Duration, r durationRange, usage string) {
	*p = def
	f.Var(&rangedDuration{p: p, def: def, r: r}, name, usage)
}

type rangedInt struct {
	p   *int
	def int
	r   intRange
}

func (v *rangedInt) Set(s string) error {
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", allowed(v.def, v.r.lo, v.r.hi, strconv.Itoa))
	}
	if int(n) != v.def && (n < int64(v.r.lo) || n > int64(v.r.hi)) {
		return fmt.Errorf("%s", allowed(v.def, v.r.lo, v.r.hi, strconv.Itoa))
	}
	*v.p = int(n)
	return nil
}

func (v *rangedInt) String() string { return strconv.Itoa(*v.p) }

func (v *rangedInt) Type() string { return "int" }

type rangedDuration struct {
	p   *time.Duration
	def time.Duration
	r   durationRange
}

func (v *rangedDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (like 30s, 5m): %s", v.allowed())
	}
	if d != v.def && !(d == 0 && v.r.zero != "") && (d < v.r.lo || d > v.r.hi) {
		return fmt.Errorf("%s", v.allowed())
	}
	*v.p = d
	return nil
}

func (v *rangedDuration) allowed() string {
	if v.r.zero != "" {
		return fmt.Sprintf("must be 0 (%s) or %s-%s", v.r.zero, v.r.lo, v.r.hi)
	}
	return allowed(v.def, v.r.lo, v.r.hi, time.Duration.String)
}

func (v *rangedDuration) String() string { return v.p.String() }

func (v *rangedDuration) Type() string { return "duration" }

// allowed says what a flag takes: "must be 1-65535", or with a default
// outside the range "must be 0 (the default) or 1-65535".
func allowed[T int | time.Duration](def, lo, hi T, str func(T) string) string {
	if def >= lo && def <= hi {
		return fmt.Sprintf("must be %s-%s", str(lo), str(hi))
	}
	return fmt.Sprintf("must be %s (the default) or %s-%s", str(def), str(lo), str(hi))
}

// vipQuery reads --vip into q (east-west: path, trace, replay): it needs
// --netns, the namespace the call starts from. Nothing when vip is "".
func vipQuery(vip string, q *topology.Query) error {
	if vip == "" {
		return nil
	}
	a, err := netip.ParseAddr(vip)
	if err != nil {
		return fmt.Errorf("--vip %q: %w", vip, err)
	}
	if q.Netns == "" {
		return fmt.Errorf("--vip needs --netns: the namespace the call starts from")
	}
	q.VIP = a
	return nil
}
