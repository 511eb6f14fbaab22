package gamepersist

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// maxREADMELength is the README's budget in characters: what a Go programmer reads in
// five minutes (pgx's README is about 8,100, ristretto's 6,900).
const maxREADMELength = 10_000

// TestREADMEIsShort keeps the README within its budget; everything else belongs in docs/.
func TestREADMEIsShort(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCount(readme); n > maxREADMELength {
		t.Fatalf("README.md has %d characters, more than %d: move the detail to docs/", n, maxREADMELength)
	}
}

// TestDocReferencesAreExported reads every markdown file and every comment of the module
// and fails for each name of a public package it mentions that the module does not
// export: `roomstore.Open` (a qualified name), `RoomInvalidator.Notify` (a method or field
// of an exported type) or [OpenPostgres] (a doc link). Markdown is checked in backquoted
// spans and code blocks, comments everywhere.
func TestDocReferencesAreExported(t *testing.T) {
	t.Parallel()
	mod, err := loadModule(".")
	if err != nil {
		t.Fatal(err)
	}
	dead, err := mod.deadReferences(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dead {
		t.Error(d)
	}
}

// TestDeadReferenceCheckerCatches keeps the checker honest: each line of the fixture names
// something the module does not export, and each is reported; names that exist are not.
func TestDeadReferenceCheckerCatches(t *testing.T) {
	t.Parallel()
	mod, err := loadModule(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, dead := range []string{
		"`roomstore.Open`", "`RoomInvalidator.Subscribe`", "`roomsync.RoomInvalidator.Notify`",
		"`flux.Runner.Tock`", "`flux.RunnerConfig.NoSuchField`", "`TestNoSuchTestAnywhere`", "`` `RoomInvalidator.Notify` ``", "```go\nx := roomstore.NewPostgress(pool)\n```",
	} {
		if got := mod.checkMarkdown("fixture.md", dead, nil); len(got) != 1 {
			t.Errorf("%q: reported %v, want one dead reference", dead, got)
		}
	}
	for _, live := range []string{
		"`roomstore.OpenPostgres`", "`RoomInvalidator.Attach`", "`natsbridge.Stats.SlowConsumer`",
		"`Runner.Step(now)`", "`flux.RunnerConfig.MeterProvider`", "`Msg.ID()`", "`Envelope.Payload`",
		"`nats.Conn`", "`cfg.TTL`", "`TestDocReferencesAreExported`", "`BenchmarkTickW1`", "`-run 'TestNoSuch|TestOther'`", "`Tiers.LucidMin`", "`doc.go`", "`Config.DeadLetterQueueLen`", "[OpenPostgres] outside a span",
	} {
		if got := mod.checkMarkdown("fixture.md", live, nil); len(got) != 0 {
			t.Errorf("%q: reported %v, want nothing", live, got)
		}
	}
	src := "// Package roomstore ...\n//\n// See [OpenPostgres], [Cached.Stats] and [Postgres.Migrate]; not [Open] nor [Cached.Nope].\n// RoomInvalidator.Notify is gone, roomsync.RoomInvalidator.Publish is not.\npackage roomstore\n"
	got, err := mod.checkGoSource("roomstore/fixture.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("reported %d dead references in the Go fixture, want 3 ([Open], [Cached.Nope], RoomInvalidator.Notify):\n%s", len(got), strings.Join(got, "\n"))
	}
	src = "// Package x links [flux.Runner] and [flux.Tick].\n//\n// [flux.Runner]: https://pkg.go.dev/github.com/gamepersist/gamepersist/flux#Runner\n// [flux.Tick]: https://pkg.go.dev/github.com/gamepersist/gamepersist/flux#Runner\npackage x\n"
	if got, err = mod.checkGoSource("fixture.go", []byte(src)); err != nil || len(got) != 3 {
		t.Fatalf("link definitions: reported %q, %v; want flux.Tick three times: in the text, in its definition, and its link to Runner", got, err)
	}
}

// TestMarkdownLinksResolve fails for a relative link in a markdown file whose file does
// not exist, or whose #anchor names no heading of the markdown file it points at.
func TestMarkdownLinksResolve(t *testing.T) {
	t.Parallel()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".md") {
			return nil
		}
		b, err := os.ReadFile(path) //nolint:gosec // a file of this module, found by the walk
		if err != nil {
			return err
		}
		for _, why := range deadLinks(path, string(b), readAnchors) {
			t.Error(why)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDeadLinkCheckerCatches keeps the link checker honest on a fixture.
func TestDeadLinkCheckerCatches(t *testing.T) {
	t.Parallel()
	text := "[a](docs/BENCHMARKS.md) [b](docs/NOPE.md) [c](docs/BENCHMARKS.md#the-bridge-w4) " +
		"[d](docs/BENCHMARKS.md#no-such-heading) [e](https://example.com/x.md) [f](#local) [g](#gone)\n\n## Local\n"
	got := deadLinks("fixture.md", text, readAnchors)
	if len(got) != 3 || !strings.Contains(got[0], "NOPE.md") || !strings.Contains(got[1], "no-such-heading") || !strings.Contains(got[2], "#gone") {
		t.Fatalf("dead links = %q, want NOPE.md, #no-such-heading and #gone", got)
	}
}

// mdLink matches a markdown link's target: [text](target).
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// deadLinks returns the relative links of the markdown file path (content text) that do
// not resolve. anchors gives the heading anchors of a markdown file.
func deadLinks(path, text string, anchors func(path string) (map[string]bool, error)) []string {
	var dead []string
	for _, g := range mdLink.FindAllStringSubmatch(text, -1) {
		target := g[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		file, anchor, _ := strings.Cut(target, "#")
		resolved := path
		if file != "" {
			resolved = filepath.Join(filepath.Dir(path), file)
			if _, err := os.Stat(resolved); err != nil {
				dead = append(dead, fmt.Sprintf("%s: link %s: no such file", path, target))
				continue
			}
		}
		if anchor == "" || !strings.HasSuffix(resolved, ".md") {
			continue
		}
		var have map[string]bool
		var err error
		if file == "" {
			have = headingAnchors(text)
		} else if have, err = anchors(resolved); err != nil {
			dead = append(dead, fmt.Sprintf("%s: link %s: %v", path, target, err))
			continue
		}
		if !have[anchor] {
			dead = append(dead, fmt.Sprintf("%s: link %s: no heading with that anchor", path, target))
		}
	}
	return dead
}

// readAnchors reads a markdown file's heading anchors.
func readAnchors(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path) //nolint:gosec // a file of this module named by a link
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return headingAnchors(string(b)), nil
}

// headingAnchors returns the anchors GitHub gives a markdown text's headings: lower case,
// punctuation other than '-' and '_' removed, spaces as '-'.
func headingAnchors(text string) map[string]bool {
	anchors := map[string]bool{}
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		anchors[b.String()] = true
	}
	return anchors
}

// module is what the module's public packages export.
type module struct {
	// names maps a public package's name to its exported top-level names.
	names map[string]map[string]bool
	// members maps "pkg.Type" to the exported methods and fields of that type, promoted
	// ones included.
	members map[string]map[string]bool
	// open lists the types that embed a type from outside the module: any member is
	// taken as theirs.
	open map[string]bool
	// typePkgs maps an exported type's name to the public packages declaring it.
	typePkgs map[string][]string
	// dirPkg maps a public package's directory (slash-separated, relative) to its name.
	dirPkg map[string]string
	// localTypes maps every directory holding Go files to the types declared there.
	localTypes map[string]map[string]bool
	// tests holds the names of the module's test, benchmark, fuzz and example functions.
	tests map[string]bool
}

// isPublicDir says whether a module directory holds an importable, non-internal package.
func isPublicDir(dir string) bool {
	return dir != "." && !strings.HasPrefix(dir, "internal") && !strings.HasPrefix(dir, "examples") &&
		!strings.Contains(dir, "/internal")
}

// skipDir says whether the walk leaves a directory out: hidden ones and testdata.
func skipDir(name string) bool {
	return name != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor")
}

// loadModule parses the module under root.
func loadModule(root string) (*module, error) {
	m := &module{names: map[string]map[string]bool{}, members: map[string]map[string]bool{},
		open: map[string]bool{}, typePkgs: map[string][]string{}, dirPkg: map[string]string{},
		localTypes: map[string]map[string]bool{}, tests: map[string]bool{}}
	embeds := map[string][]string{} // "pkg.Type" → embedded "pkg.Type"s
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parse: %w", err)
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if m.localTypes[dir] == nil {
			m.localTypes[dir] = map[string]bool{}
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasSuffix(path, "_test.go") && testFunc.MatchString(fn.Name.Name) {
				m.tests[fn.Name.Name] = true
			}
			if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.TYPE {
				for _, s := range g.Specs {
					m.localTypes[dir][s.(*ast.TypeSpec).Name.Name] = true
				}
			}
		}
		if !isPublicDir(dir) || strings.HasSuffix(path, "_test.go") || f.Name.Name == "main" {
			return nil
		}
		pkg := f.Name.Name
		m.dirPkg[dir] = pkg
		if m.names[pkg] == nil {
			m.names[pkg] = map[string]bool{}
		}
		m.collect(pkg, f, embeds)
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.promote(embeds)
	return m, nil
}

// collect records the exported declarations of one file of package pkg.
func (m *module) collect(pkg string, f *ast.File, embeds map[string][]string) {
	member := func(typ, name string) {
		key := pkg + "." + typ
		if m.members[key] == nil {
			m.members[key] = map[string]bool{}
		}
		if ast.IsExported(name) {
			m.members[key][name] = true
		}
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				if d.Name.IsExported() {
					m.names[pkg][d.Name.Name] = true
				}
				continue
			}
			if typ := baseTypeName(d.Recv.List[0].Type); typ != "" {
				member(typ, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() {
							m.names[pkg][n.Name] = true
						}
					}
				case *ast.TypeSpec:
					if !s.Name.IsExported() {
						continue
					}
					typ := s.Name.Name
					m.names[pkg][typ] = true
					m.typePkgs[typ] = append(m.typePkgs[typ], pkg)
					member(typ, "") // the type exists even with no exported member
					var fields *ast.FieldList
					switch t := s.Type.(type) {
					case *ast.StructType:
						fields = t.Fields
					case *ast.InterfaceType:
						fields = t.Methods
					}
					if fields == nil {
						continue
					}
					for _, fld := range fields.List {
						if len(fld.Names) > 0 {
							for _, n := range fld.Names {
								member(typ, n.Name)
							}
							continue
						}
						switch e := unstar(fld.Type).(type) {
						case *ast.Ident:
							member(typ, e.Name)
							embeds[pkg+"."+typ] = append(embeds[pkg+"."+typ], pkg+"."+e.Name)
						case *ast.SelectorExpr:
							member(typ, e.Sel.Name)
							m.open[pkg+"."+typ] = true // promoted from another module's type
						}
					}
				}
			}
		}
	}
}

// promote adds the members of embedded types to the types embedding them.
func (m *module) promote(embeds map[string][]string) {
	for changed := true; changed; {
		changed = false
		for typ, inner := range embeds {
			for _, e := range inner {
				if m.open[e] && !m.open[typ] {
					m.open[typ], changed = true, true
				}
				for name := range m.members[e] {
					if !m.members[typ][name] {
						m.members[typ][name], changed = true, true
					}
				}
			}
		}
	}
}

// unstar removes a pointer from a type expression.
func unstar(e ast.Expr) ast.Expr {
	if s, ok := e.(*ast.StarExpr); ok {
		return s.X
	}
	return e
}

// baseTypeName is the name of a method receiver's type: T, *T, T[K], *T[K, V].
func baseTypeName(e ast.Expr) string {
	switch t := unstar(e).(type) {
	case *ast.Ident:
		return t.Name
	case *ast.IndexExpr:
		return baseTypeName(t.X)
	case *ast.IndexListExpr:
		return baseTypeName(t.X)
	}
	return ""
}

var (
	// dottedName matches a.B and a.B.C where the parts after the first are exported.
	dottedName = regexp.MustCompile(`\b([A-Za-z_]\w*)\.([A-Z]\w*)(?:\.([A-Z]\w*))?`)
	// docLink matches a Go doc link: [Name], [Type.Member], [pkg.Name], [pkg.Type.Member].
	// The bracket must not follow a word or a bracket (Envelope[T], map[K]V) nor open a link
	// definition ([Name]: URL) or a markdown link ([Name](URL)).
	docLink = regexp.MustCompile(`(?:^|[^\w\]])\[([A-Za-z_]\w*(?:\.[A-Z]\w*){0,2})\]([^(:\[]|$)`)
	// linkDef matches a doc comment's link definition of a name of this module on pkg.go.dev.
	linkDef = regexp.MustCompile(`^\[(\w+)\.(\w+)\]: https://pkg\.go\.dev/github\.com/gamepersist/gamepersist/(\w+)#(\w+)$`)
	// testFunc matches the name of a test, benchmark, fuzz or example function.
	testFunc = regexp.MustCompile(`^(Test|Benchmark|Fuzz|Example)[A-Z_]\w*$`)
	// testName matches such a name standing alone in a code span: a span that is a whole
	// name (`TestX`), not a pattern (`-run 'TestX|TestY'`) or a prefix (`BenchmarkCached*`).
	testName = regexp.MustCompile(`^(Test|Benchmark|Fuzz)[A-Z_]\w*$`)
	// codeSpan matches a markdown inline code span.
	codeSpan = regexp.MustCompile("``(.+?)``|`([^`\n]+)`")
)

// checkName checks one reference: parts are "pkg", "Name" [, "Member"] or "Type",
// "Member", as written. pkg is the package the reference is written in ("" for
// markdown) and local the types declared beside it. It returns why the reference is
// dead, or "" when it is alive or names nothing of this module.
func (m *module) checkName(parts []string, pkg string, local map[string]bool) string {
	first := parts[0]
	if names, ok := m.names[first]; ok {
		// pkg.Name or pkg.Type.Member
		name := parts[1]
		if !names[name] {
			return fmt.Sprintf("package %s exports no %s", first, name)
		}
		if len(parts) == 3 {
			return m.checkMember(first, name, parts[2])
		}
		return ""
	}
	// Type.Member or Type.Member.Member: a type of this package first, then any public one.
	if pkg != "" && m.names[pkg][first] {
		return m.checkMember(pkg, first, parts[1])
	}
	if local[first] || !ast.IsExported(first) {
		return "" // a type of the file's own (non-public) package, or a variable
	}
	pkgs := m.typePkgs[first]
	if len(pkgs) == 0 {
		return ""
	}
	var why string
	for _, p := range pkgs {
		if why = m.checkMember(p, first, parts[1]); why == "" {
			return ""
		}
	}
	return why
}

// checkMember checks that pkg.typ has the exported method or field member.
func (m *module) checkMember(pkg, typ, member string) string {
	key := pkg + "." + typ
	ms, isType := m.members[key]
	if !isType {
		return "" // a function or variable: a field path of its value cannot be checked here
	}
	if ms[member] || m.open[key] {
		return ""
	}
	return fmt.Sprintf("%s.%s has no exported method or field %s", pkg, typ, member)
}

// checkMarkdown returns the dead references of one markdown file: names in inline code
// spans, and qualified names (pkg.Name) in fenced code blocks. local are the types
// declared in the file's directory.
func (m *module) checkMarkdown(path, text string, local map[string]bool) []string {
	var dead []string
	report := func(line int, ref, why string) {
		dead = append(dead, fmt.Sprintf("%s:%d: %s: %s", path, line, ref, why))
	}
	inFence := false
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			for _, g := range dottedName.FindAllStringSubmatch(line, -1) {
				if _, isPkg := m.names[g[1]]; isPkg {
					if why := m.checkName(nonEmpty(g[1:]), "", local); why != "" {
						report(i+1, g[0], why)
					}
				}
			}
			continue
		}
		for _, g := range codeSpan.FindAllStringSubmatch(line, -1) {
			span := strings.TrimSpace(g[1] + g[2])
			for _, name := range testName.FindAllString(span, -1) {
				if !m.tests[name] {
					report(i+1, "`"+name+"`", "no test, benchmark or example of the module has that name")
				}
			}
			for _, g := range dottedName.FindAllStringSubmatch(span, -1) {
				if why := m.checkName(nonEmpty(g[1:]), "", local); why != "" {
					report(i+1, "`"+g[0]+"`", why)
				}
			}
		}
	}
	return dead
}

// checkGoSource returns the dead references in the comments of one Go file: dotted
// names anywhere in a comment, and doc links.
func (m *module) checkGoSource(path string, src []byte) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	dir := filepath.ToSlash(filepath.Dir(path))
	pkg := m.dirPkg[dir] // "" outside the public packages
	local := m.localTypes[dir]
	var dead []string
	for _, cg := range f.Comments {
		first := fset.Position(cg.Pos()).Line
		for i, line := range strings.Split(cg.Text(), "\n") {
			report := func(ref, why string) {
				dead = append(dead, fmt.Sprintf("%s:%d: %s: %s", path, first+i, ref, why))
			}
			for _, g := range dottedName.FindAllStringSubmatch(line, -1) {
				if why := m.checkName(nonEmpty(g[1:]), pkg, local); why != "" {
					report(g[0], why)
				}
			}
			// A link definition for a name of another package must point at that name.
			if g := linkDef.FindStringSubmatch(line); g != nil && (g[1] != g[3] || g[2] != g[4]) {
				report("["+g[1]+"."+g[2]+"]", "its link points at "+g[3]+"#"+g[4])
			}
			if pkg == "" {
				continue // doc links resolve against the file's package: only public ones are checked
			}
			for _, g := range docLink.FindAllStringSubmatch(line, -1) {
				// [Type.Member] and [pkg.Name] were checked as dotted names above.
				if name := g[1]; !strings.Contains(name, ".") && ast.IsExported(name) && !m.names[pkg][name] {
					report("["+name+"]", fmt.Sprintf("package %s exports no %s", pkg, name))
				}
			}
		}
	}
	return dead, nil
}

// deadReferences checks every markdown and Go file under root.
func (m *module) deadReferences(root string) ([]string, error) {
	var dead []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(path, ".md"):
			b, err := os.ReadFile(path) //nolint:gosec // a file of this module, found by the walk
			if err != nil {
				return err
			}
			dead = append(dead, m.checkMarkdown(path, string(b), m.localTypes[filepath.ToSlash(filepath.Dir(path))])...)
		case path == "docs_test.go":
			// This file's comments and fixtures name dead references on purpose.
		case strings.HasSuffix(path, ".go"):
			b, err := os.ReadFile(path) //nolint:gosec // a file of this module, found by the walk
			if err != nil {
				return err
			}
			found, err := m.checkGoSource(path, b)
			if err != nil {
				return err
			}
			dead = append(dead, found...)
		}
		return nil
	})
	sort.Strings(dead)
	return dead, err
}

// nonEmpty drops the empty trailing groups of a regexp match.
func nonEmpty(groups []string) []string {
	for len(groups) > 0 && groups[len(groups)-1] == "" {
		groups = groups[:len(groups)-1]
	}
	return groups
}
