package productd_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The repository's documents stand on their own: every link and every path
// they name exists in the repository, the architecture's package table names
// real packages, and no file sends the reader to a document outside it.

// repoFiles returns the paths, relative to the repository root (this
// package's directory), of the files a reader may meet: everything but
// dot-folders other than .ci (.git, .data), bin and testdata.
func repoFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(name, ".") && name != ".ci" || name == "bin" || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && name != ".git" { // a worktree's link to its repository
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

var (
	// mdLink is an inline Markdown link; its target is group 1.
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// codeSpan is an inline code span; its text is group 1.
	codeSpan = regexp.MustCompile("`([^`\n]+)`")
	// pathLike is a code span that reads as a path inside the repository:
	// a word, a slash, more.
	pathLike = regexp.MustCompile(`^[a-zA-Z0-9_.-]+(/[a-zA-Z0-9_.-]+)+/?$`)
)

func TestDocumentLinksAndPathsExist(t *testing.T) {
	t.Parallel()
	checked := 0
	for _, doc := range repoFiles(t) {
		if filepath.Ext(doc) != ".md" {
			continue
		}
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllSubmatch(text, -1) {
			target := string(m[1])
			if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			checked++
			if !exists(filepath.Join(filepath.Dir(doc), target)) {
				t.Errorf("%s links to %s, which is not in the repository", doc, m[1])
			}
		}
		// A code span whose first segment is a top-level entry of the
		// repository names a path in it (`docs/BENCHMARKS.md`,
		// `cmd/productd`); one like `image/jpeg` does not.
		for _, m := range codeSpan.FindAllSubmatch(text, -1) {
			span := string(m[1])
			first, _, _ := strings.Cut(span, "/")
			if !pathLike.MatchString(span) || !exists(first) {
				continue
			}
			checked++
			if !exists(span) {
				t.Errorf("%s names `%s`, which is not in the repository", doc, span)
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d links and paths checked: the documents or this test lost their way", checked)
	}
}

// Package rows of docs/ARCHITECTURE.md: a first cell holding one code span.
var packageRow = regexp.MustCompile("(?m)^\\| `([^`]+)`[^|]*\\|")

// architecturePackages returns the packages the rows of
// docs/ARCHITECTURE.md's Packages table name, in order.
func architecturePackages(t *testing.T) []string {
	t.Helper()
	text, err := os.ReadFile("docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := bytes.Cut(text, []byte("\n## Packages\n"))
	table, _, _ = bytes.Cut(table, []byte("\n## "))
	var names []string
	for _, row := range packageRow.FindAllSubmatch(table, -1) {
		names = append(names, string(row[1]))
	}
	if len(names) < 10 {
		t.Fatalf("found %d package rows in docs/ARCHITECTURE.md's Packages section", len(names))
	}
	return names
}

func TestTheArchitectureTableNamesRealPackages(t *testing.T) {
	t.Parallel()
	for _, name := range architecturePackages(t) {
		dir := name
		if dir == "productd" {
			dir = "." // the root package
		}
		goFiles, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		if len(goFiles) == 0 {
			t.Errorf("docs/ARCHITECTURE.md lists package %s; there is no Go package at %s", name, dir)
		}
	}
}

// TestTheArchitectureTableNamesEveryPackage is the other direction: a
// package without a row is one a reader cannot find its job for.
func TestTheArchitectureTableNamesEveryPackage(t *testing.T) {
	t.Parallel()
	listed := map[string]bool{}
	for _, name := range architecturePackages(t) {
		listed[name] = true
	}
	packages := map[string]bool{}
	for _, path := range repoFiles(t) {
		if filepath.Ext(path) == ".go" && !strings.HasSuffix(path, "_test.go") {
			packages[filepath.ToSlash(filepath.Dir(path))] = true
		}
	}
	if len(packages) < 10 {
		t.Fatalf("found %d packages", len(packages))
	}
	for dir := range packages {
		name := dir
		if dir == "." {
			name = "productd"
		}
		if !listed[name] {
			t.Errorf("package %s has no row in docs/ARCHITECTURE.md's Packages table", name)
		}
	}
}

// outside matches references to documents that are not in the repository.
// It is spelled in pieces so that this file does not match it.
var outside = regexp.MustCompile(`\bDES` + `IGN\b|FIELD-` + `NOTES|\.\./` + `shared\b|/work/` + `(shared|wt|main)\b|TEAM` + `\.md`)

// people matches the roles of the people who wrote the code; comments and
// documents say what the code does, not who did or will do what.
var people = regexp.MustCompile(`(?i)\bengi` + `neers?\b|\b(the|a) lead` + `('s)?\b`)

// TestNothingPointsOutsideTheRepository also refuses text that names people.
func TestNothingPointsOutsideTheRepository(t *testing.T) {
	t.Parallel()
	files := repoFiles(t)
	if len(files) < 50 {
		t.Fatalf("only %d files found from %s", len(files), must(os.Getwd()))
	}
	for _, path := range files {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(text, 0) >= 0 {
			continue // binary
		}
		for i, line := range strings.Split(string(text), "\n") {
			if outside.MatchString(line) {
				t.Errorf("%s:%d refers to a document outside the repository: %s", path, i+1, strings.TrimSpace(line))
			}
			if people.MatchString(line) {
				t.Errorf("%s:%d names people rather than what the code does: %s", path, i+1, strings.TrimSpace(line))
			}
		}
	}
}

func must(s string, err error) string {
	if err != nil {
		return err.Error()
	}
	return s
}
