// Package loglint finds formatted log messages in Go source: the audit's second finding.
// The project's rule is structured logging only — zerolog fields and a constant message —
// so it reports:
//
//   - any call of a method named Msgf (zerolog's formatted message);
//   - a fmt.Sprintf/Sprint/Sprintln call passed as an argument of a zerolog-style call
//     (Msg, Str, Strs, Interface, Any, Err, Send on an event chain);
//   - calls of the standard library's log package (log.Printf, log.Println, …).
//
// golangci-lint's forbidigo rule in .golangci.yml catches the first and third; this
// package adds the second, and runs as an ordinary test so `go test ./...` enforces all
// three even where golangci-lint is not installed.
package loglint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
)

// Finding is one formatted log call.
type Finding struct {
	Pos  token.Position
	What string
}

// String renders the finding as file:line: what.
func (f Finding) String() string {
	return f.Pos.String() + ": " + f.What
}

// eventMethods are zerolog event/context methods whose arguments form a log line.
var eventMethods = map[string]bool{
	"Msg": true, "Str": true, "Strs": true, "Interface": true, "Any": true, "Err": true,
	"AnErr": true, "Stringer": true, "RawJSON": true, "Bytes": true,
}

var sprintFuncs = map[string]bool{"Sprintf": true, "Sprint": true, "Sprintln": true}

var stdLogFuncs = map[string]bool{
	"Print": true, "Printf": true, "Println": true, "Fatal": true, "Fatalf": true,
	"Fatalln": true, "Panic": true, "Panicf": true, "Panicln": true,
}

// Check parses every .go file under root (skipping vendor, testdata and hidden
// directories) and returns the formatted log calls it finds. It costs one parse of each
// file and no type checking: imports are resolved by name within each file.
func Check(root string) ([]Finding, error) {
	var out []Finding
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "vendor" || name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		out = append(out, checkFile(fset, f)...)
		return nil
	})
	return out, err
}

// CheckSource checks one file's source text; filename is used in positions only.
func CheckSource(filename string, src []byte) ([]Finding, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filename, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	return checkFile(fset, f), nil
}

func checkFile(fset *token.FileSet, f *ast.File) []Finding {
	fmtName, logName := "", ""
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		name := ""
		if imp.Name != nil {
			name = imp.Name.Name
		}
		switch p {
		case "fmt":
			fmtName = firstNonEmpty(name, "fmt")
		case "log":
			logName = firstNonEmpty(name, "log")
		}
	}
	var out []Finding
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		method := sel.Sel.Name
		if method == "Msgf" {
			out = append(out, Finding{fset.Position(call.Pos()), "formatted log message (Msgf): use fields and a constant message"})
			return true
		}
		if pkg, ok := sel.X.(*ast.Ident); ok && logName != "" && pkg.Name == logName && stdLogFuncs[method] {
			out = append(out, Finding{fset.Position(call.Pos()), "standard log package call: use the injected zerolog.Logger"})
			return true
		}
		if eventMethods[method] && fmtName != "" {
			for _, arg := range call.Args {
				if isSprint(arg, fmtName) {
					out = append(out, Finding{fset.Position(arg.Pos()), "fmt." + sprintName(arg) + " inside a log call: use fields"})
				}
			}
		}
		return true
	})
	return out
}

func isSprint(e ast.Expr, fmtName string) bool {
	c, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	s, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := s.X.(*ast.Ident)
	return ok && id.Name == fmtName && sprintFuncs[s.Sel.Name]
}

func sprintName(e ast.Expr) string {
	return e.(*ast.CallExpr).Fun.(*ast.SelectorExpr).Sel.Name
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
