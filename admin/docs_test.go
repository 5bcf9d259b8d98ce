package admin

import (
	"os"
	"regexp"
	"testing"
)

// docs/format/admin-api.md lists every route of the table, and no other.
func TestFormatPageListsEveryRoute(t *testing.T) {
	b, err := os.ReadFile("../docs/format/admin-api.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\| (\\w+) \\| `/admin/v1/([^`]+)` \\| (\\w+) \\|").FindAllStringSubmatch(string(b), -1)
	documented := map[string]bool{}
	for _, r := range rows {
		documented[r[1]+" "+r[2]+" "+r[3]] = true
	}
	for _, rt := range Routes {
		key := rt.Method + " " + rt.Path + " " + string(rt.Op)
		if !documented[key] {
			t.Errorf("the format page lacks %s", key)
		}
		delete(documented, key)
	}
	for key := range documented {
		t.Errorf("the format page lists %s, which is not a route", key)
	}
}
