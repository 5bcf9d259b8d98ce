// Package logging builds a node's logger: text or JSON lines, and
// repeated warnings held back. During an outage the same warning comes
// from every request that meets the dead node; the first one in each
// window is written, the ones after it are counted, and the next one
// written says how many it stands for.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Options of a logger.
type Options struct {
	Format string     // text or json
	Level  slog.Level // the least level written
	// Repeat is the window in which a warning or error with the same
	// message is written once (0: every one).
	Repeat time.Duration
	// Now is the clock (nil: time.Now); tests set it.
	Now func() time.Time
}

// New returns a logger writing to w.
func New(w io.Writer, o Options) (*slog.Logger, error) {
	ho := &slog.HandlerOptions{Level: o.Level}
	var h slog.Handler
	switch o.Format {
	case "", "text":
		h = slog.NewTextHandler(w, ho)
	case "json":
		h = slog.NewJSONHandler(w, ho)
	default:
		return nil, fmt.Errorf("log format %q: want text or json", o.Format)
	}
	if o.Repeat > 0 {
		now := o.Now
		if now == nil {
			now = time.Now
		}
		h = &Limited{next: h, l: &limiter{every: o.Repeat, now: now, seen: map[string]*seen{}}}
	}
	return slog.New(h), nil
}

// maxKeys bounds the messages remembered; past it the window starts over.
const maxKeys = 4096

type limiter struct {
	mu    sync.Mutex
	every time.Duration
	now   func() time.Time
	seen  map[string]*seen
}

type seen struct {
	at         time.Time // when the last written one was
	suppressed int
}

// admit says whether a record with this key is written, and how many were
// held back since the last one that was.
func (l *limiter) admit(key string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	s, ok := l.seen[key]
	if !ok {
		if len(l.seen) >= maxKeys {
			l.seen = map[string]*seen{}
		}
		l.seen[key] = &seen{at: now}
		return true, 0
	}
	if now.Sub(s.at) < l.every {
		s.suppressed++
		return false, 0
	}
	n := s.suppressed
	s.at, s.suppressed = now, 0
	return true, n
}

// Limited is a handler that holds back repeated warnings and errors.
type Limited struct {
	next slog.Handler
	l    *limiter
	pre  string // groups and attrs added, so a logger's variants do not share keys
}

func (h *Limited) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *Limited) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	ok, held := h.l.admit(h.pre + r.Level.String() + " " + r.Message)
	if !ok {
		return nil
	}
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", held), slog.Duration("within", h.l.every))
	}
	return h.next.Handle(ctx, r)
}

func (h *Limited) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Limited{next: h.next.WithAttrs(attrs), l: h.l, pre: h.pre + fmt.Sprint(attrs) + "|"}
}

func (h *Limited) WithGroup(name string) slog.Handler {
	return &Limited{next: h.next.WithGroup(name), l: h.l, pre: h.pre + name + "."}
}
