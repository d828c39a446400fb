package doctor

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// emittedCodes are the string literals the package's (non-test) code gives
// a Finding's Code: `Code: "x"` in a composite literal, `f.Code = "x"`.
func emittedCodes(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		lit := func(e ast.Expr) {
			if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == token.STRING {
				s, _ := strconv.Unquote(bl.Value)
				out[s] = fset.Position(bl.Pos()).String()
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.KeyValueExpr:
				if id, ok := n.Key.(*ast.Ident); ok && id.Name == "Code" {
					lit(n.Value)
				}
			case *ast.AssignStmt:
				for i, l := range n.Lhs {
					if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Code" && i < len(n.Rhs) {
						lit(n.Rhs[i])
					}
				}
			}
			return true
		})
	}
	return out
}

// TestCodesTable: every code the checks emit is in Codes, and every code
// of Codes is emitted somewhere (the table is the one list).
func TestCodesTable(t *testing.T) {
	emitted := emittedCodes(t)
	listed := map[string]bool{}
	for _, c := range Codes {
		if listed[c.Code] {
			t.Errorf("code %s listed twice", c.Code)
		}
		listed[c.Code] = true
		if _, ok := emitted[c.Code]; !ok {
			t.Errorf("code %s is listed in Codes but no check emits it", c.Code)
		}
		if c.What == "" || strings.Contains(c.What, "\n") {
			t.Errorf("code %s: want one line, got %q", c.Code, c.What)
		}
	}
	var missing []string
	for code, where := range emitted {
		if !listed[code] {
			missing = append(missing, code+" ("+where+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("codes emitted but not in Codes: %s", strings.Join(missing, ", "))
	}
}

// The README's doctor section between these markers is WriteCodeList's.
const (
	readmeBegin = "<!-- doctor codes: generated from doctor.Codes by TestREADMECodes; UPDATE_README=1 go test ./doctor rewrites it -->\n"
	readmeEnd   = "<!-- end of doctor codes -->\n"
)

// TestREADMECodes: the README lists every finding code, one line each, as
// WriteCodeList renders doctor.Codes. UPDATE_README=1 rewrites the section.
func TestREADMECodes(t *testing.T) {
	const readme = "../README.md"
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(readmeBegin))
	j := bytes.Index(b, []byte(readmeEnd))
	if i < 0 || j < i {
		t.Fatalf("README.md has no section between %q and %q", readmeBegin, readmeEnd)
	}
	var want bytes.Buffer
	if err := WriteCodeList(&want); err != nil {
		t.Fatal(err)
	}
	got := b[i+len(readmeBegin) : j]
	if bytes.Equal(got, want.Bytes()) {
		return
	}
	if os.Getenv("UPDATE_README") != "" {
		out := append(append(append([]byte{}, b[:i+len(readmeBegin)]...), want.Bytes()...), b[j:]...)
		if err := os.WriteFile(readme, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's doctor codes are out of date (UPDATE_README=1 go test ./doctor -run TestREADMECodes):\n got:\n%s\nwant:\n%s", got, want.Bytes())
}
