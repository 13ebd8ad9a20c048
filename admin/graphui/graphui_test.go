package graphui

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestStaticFilesPolicy guards what the CSP would otherwise only reveal in a
// browser: no inline script, style or event handler, nothing loaded from
// another origin, and no string-to-code or HTML-injection APIs in the
// script.
func TestStaticFilesPolicy(t *testing.T) {
	const svgNS = "http://www.w3.org/2000/svg"
	forbidden := map[string][]*regexp.Regexp{
		"": {regexp.MustCompile(`https?://`), regexp.MustCompile(`(?i)//[a-z0-9.-]+\.[a-z]{2,}/`)},
		".html": {
			regexp.MustCompile(`(?i)<style`),
			regexp.MustCompile(`(?i)\sstyle=`),
			regexp.MustCompile(`(?i)\son[a-z]+=`),
			regexp.MustCompile(`(?i)javascript:`),
		},
		".js": {
			regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write`),
			regexp.MustCompile(`\beval\(|new Function|setTimeout\("|setAttribute\("style"`),
			regexp.MustCompile(`\.style\.`),
		},
	}
	scriptTag := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	err := fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := static.ReadFile(path)
		if err != nil {
			return err
		}
		text := strings.ReplaceAll(string(data), svgNS, "")
		ext := path[strings.LastIndex(path, "."):]
		for _, m := range scriptTag.FindAllStringSubmatch(text, -1) {
			if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
				t.Errorf("%s: inline script %q", path, m[0])
			}
		}
		for _, re := range append(forbidden[""], forbidden[ext]...) {
			if loc := re.FindStringIndex(text); loc != nil {
				t.Errorf("%s: %q matches %s", path, text[loc[0]:min(loc[1]+20, len(text))], re)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNew: every file the page references is served.
func TestNew(t *testing.T) {
	v := New()
	page := string(v.files[Path].body)
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) == 0 {
		t.Fatalf("index.html references no file")
	}
	for _, m := range refs {
		if f, ok := v.files[Path+m[1]]; !ok || len(f.body) == 0 {
			t.Errorf("index.html references %q, which is not served", m[1])
		}
	}
}
