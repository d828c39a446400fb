package inspect

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/inspect/parse"
)

// TestRuleArgsRecorded: no rule of any recorded iptables-save is refused.
func TestRuleArgsRecorded(t *testing.T) {
	n := 0
	filepath.WalkDir("../fixtures", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, "hostile") || !strings.HasPrefix(d.Name(), "iptables") || !strings.HasSuffix(p, ".txt") {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fw, err := parse.IptablesSave(p, f)
		if err != nil {
			return nil // not iptables-save output (a recorded failure)
		}
		for _, tb := range fw.Tables {
			for _, c := range tb.Chains {
				for _, r := range c.Rules {
					n++
					if why := badRuleArg(r); why != "" {
						t.Errorf("%s:%d: %s refused: %s", p, r.Line, r.Text, why)
					}
				}
			}
		}
		return nil
	})
	if n < 100 {
		t.Errorf("only %d recorded rules checked", n)
	}
}

// TestRuleArgsRefused: a rule with an argument iptables refuses leaves its
// chain for Unparsed, naming the file, the line and the argument.
func TestRuleArgsRefused(t *testing.T) {
	for rule, want := range map[string]string{
		"-A X -p tcp -m tcp --dport 99999 -j ACCEPT":                  `--dport "99999"`,
		"-A X -p tcp -m tcp --dport -5 -j ACCEPT":                     `--dport "-5"`,
		"-A X -p tcp -m tcp --sport 9:1 -j ACCEPT":                    `--sport "9:1"`,
		"-A X -p tcp -m multiport --dports 1,70000 -j ACCEPT":         `--dports "1,70000"`,
		"-A X -p tcp -j DNAT --to-destination 999.1.2.3:80":           `--to-destination "999.1.2.3:80"`,
		"-A X -p tcp -j DNAT --to-destination 10.0.0.1:notaport":      `--to-destination "10.0.0.1:notaport"`,
		"-A X -p tcp -j DNAT --to-destination":                        `--to-destination needs one argument`,
		"-A X -p tcp -j DNAT":                                         `DNAT without --to-destination`,
		"-A X -j REDIRECT --to-ports 70000":                           `--to-ports "70000"`,
		"-A X -m statistic --mode nth --every 0 --packet 0 -j ACCEPT": `--every "0"`,
		"-A X -m statistic --mode nth --every 2 --packet 2 -j ACCEPT": `--packet "2"`,
		"-A X -m statistic --mode random --probability 1.5 -j ACCEPT": `--probability "1.5"`,
		"-A X -s 10.0.0.0/99 -j ACCEPT":                               `-s "10.0.0.0/99"`,
		"-A X -d 300.0.0.1/32 -j ACCEPT":                              `-d "300.0.0.1/32"`,
		"-A X -j MARK --set-xmark 0xffffffffff/0x1":                   `--set-xmark "0xffffffffff/0x1"`,
		"-A X -m mark --mark banana -j ACCEPT":                        `--mark "banana"`,
		"-A X -i averyveryverylongname0 -j ACCEPT":                    `-i "averyveryverylongname0"`,
		"-A X -p 300 -j ACCEPT":                                       `-p "300"`,
	} {
		in := "*nat\n:X - [0:0]\n-A X -j RETURN\n" + rule + "\nCOMMIT\n"
		fw, err := parse.IptablesSave("f.txt", strings.NewReader(in))
		if err != nil {
			t.Fatalf("%s: %v", rule, err)
		}
		keepValidRules(fw, "f.txt")
		rules := fw.Table("nat").Chain("X").Rules
		if len(rules) != 1 || len(fw.Unparsed) != 1 {
			t.Errorf("%s: %d rules kept, unparsed %+v", rule, len(rules), fw.Unparsed)
			continue
		}
		u := fw.Unparsed[0]
		if u.File != "f.txt" || u.Line != 4 || u.Text != rule || !strings.Contains(u.Reason, want) {
			t.Errorf("%s: unparsed %+v, want line 4 and %q", rule, u, want)
		}
	}
	// What iptables accepts stays.
	for _, rule := range []string{
		"-A X -p tcp -m tcp --dport 0:65535 -j ACCEPT",
		"-A X -p udp -m multiport --dports 53,5353:5360 -j ACCEPT",
		"-A X -d 10.0.0.0/255.0.255.0 -j ACCEPT",
		"-A X -s fe80::/10 -j ACCEPT",
		"-A X -p tcp -j DNAT --to-destination 172.18.0.2:8080",
		"-A X -p tcp -j DNAT --to-destination 10.0.0.1-10.0.0.9:80-90",
		"-A X -p tcp -j DNAT --to-destination [fe80::1]:80",
		"-A X -p tcp -j SNAT --to-source 10.0.0.2",
		"-A X -j REDIRECT --to-ports 80-81",
		"-A X -j MARK --set-xmark 0x100/0xffffffff",
		"-A X -m statistic --mode nth --every 3 --packet 2 -j ACCEPT",
		"-A X -m statistic --mode random --probability 0.50000000000 -j ACCEPT",
		"-A X -i veth+ -o docker_gwbridge -p 47 -j ACCEPT",
	} {
		fw, err := parse.IptablesSave("f.txt", strings.NewReader("*nat\n:X - [0:0]\n"+rule+"\nCOMMIT\n"))
		if err != nil {
			t.Fatal(err)
		}
		keepValidRules(fw, "f.txt")
		if len(fw.Unparsed) != 0 {
			t.Errorf("%s refused: %+v", rule, fw.Unparsed)
		}
	}
}
