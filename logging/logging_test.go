package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRepeatedWarningsAreHeldBackAndCounted(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Unix(1000, 0)
	log, err := New(&buf, Options{Format: "json", Level: slog.LevelInfo, Repeat: 10 * time.Second, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 420; i++ { // an outage: one warning per request
		log.Warn("shard read failed", "node", "node3", "object", i)
		log.Info("request served", "object", i) // info is never held back
	}
	log.Warn("another warning")
	clock = clock.Add(11 * time.Second)
	log.Warn("shard read failed", "node", "node3", "object", 420)
	var warns []map[string]any
	infos := 0
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if m["level"] == "WARN" {
			warns = append(warns, m)
		} else {
			infos++
		}
	}
	if infos != 420 || len(warns) != 3 {
		t.Fatalf("%d info lines, %d warnings:\n%s", infos, len(warns), buf.String())
	}
	if warns[0]["object"] != float64(0) || warns[0]["repeated"] != nil || warns[1]["msg"] != "another warning" {
		t.Fatalf("first warnings: %v", warns[:2])
	}
	if warns[2]["repeated"] != float64(419) || warns[2]["object"] != float64(420) {
		t.Fatalf("the warning after the window: %v", warns[2])
	}
}

func TestFormats(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, Options{Format: "text"})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello", "k", "v")
	if !strings.Contains(buf.String(), "msg=hello k=v") {
		t.Fatalf("text: %q", buf.String())
	}
	if _, err := New(&buf, Options{Format: "xml"}); err == nil {
		t.Fatal("an unknown format was accepted")
	}
	// Without a window every warning is written.
	buf.Reset()
	log, _ = New(&buf, Options{Format: "text"})
	for i := 0; i < 3; i++ {
		log.Warn("again")
	}
	if n := strings.Count(buf.String(), "again"); n != 3 {
		t.Fatalf("%d of 3 warnings written", n)
	}
}
