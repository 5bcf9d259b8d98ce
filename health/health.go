// Package health answers whether a node is alive, ready and healthy, on
// the admin listener:
//
//	/livez    the process answers (never fails during a rebuild, a rescan
//	          or an index build: a liveness probe that fails then kills a
//	          storage pod mid-repair)
//	/readyz   it can serve: listeners, metadata store and ring ready
//	/healthz  ok, degraded or critical, with the reasons (also /health)
//
// Components report through Sources and Readiness checks; the package
// only runs them (in parallel, each bounded) and writes the answers.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Severities of a reason, and the statuses they make.
const (
	OK       = "ok"
	Degraded = "degraded" // serving, with less redundancy or room than it should have
	Critical = "critical" // some requests fail (writes below quorum, volumes without quorum)
)

// Reason is one thing that is not as it should be.
type Reason struct {
	Severity  string `json:"severity"`  // degraded or critical
	Component string `json:"component"` // devices, nodes, disks, objects, volumes, …
	Message   string `json:"message"`
}

// Source reports a component's reasons, and details to show beside them
// in /healthz (merged into its top level; nil for none).
type Source func(ctx context.Context) ([]Reason, map[string]any)

// Readiness is one thing a node needs before it can serve; nil when ready.
type Readiness func(ctx context.Context) error

// Checker runs the checks.
type Checker struct {
	mu      sync.Mutex
	sources []named[Source]
	ready   []named[Readiness]
	timeout time.Duration
}

type named[T any] struct {
	name string
	f    T
}

// New returns a checker that gives each check at most timeout.
func New(timeout time.Duration) *Checker { return &Checker{timeout: timeout} }

// AddSource adds a health source.
func (c *Checker) AddSource(name string, s Source) {
	c.mu.Lock()
	c.sources = append(c.sources, named[Source]{name, s})
	c.mu.Unlock()
}

// AddReadiness adds a readiness check.
func (c *Checker) AddReadiness(name string, r Readiness) {
	c.mu.Lock()
	c.ready = append(c.ready, named[Readiness]{name, r})
	c.mu.Unlock()
}

// Report is the /healthz answer.
type Report struct {
	Status  string         `json:"status"`
	Reasons []Reason       `json:"reasons"`
	Details map[string]any `json:"-"`
}

// MarshalJSON puts the details beside status and reasons.
func (r Report) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for k, v := range r.Details {
		m[k] = v
	}
	m["status"], m["reasons"] = r.Status, r.Reasons
	return json.Marshal(m)
}

// Health runs every source.
func (c *Checker) Health(ctx context.Context) Report {
	c.mu.Lock()
	sources := append([]named[Source](nil), c.sources...)
	c.mu.Unlock()
	type result struct {
		reasons []Reason
		details map[string]any
	}
	results := make([]result, len(sources))
	var wg sync.WaitGroup
	for i, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, c.timeout)
			defer cancel()
			done := make(chan result, 1)
			go func() {
				r, d := s.f(ctx)
				done <- result{r, d}
			}()
			select {
			case r := <-done:
				results[i] = r
			case <-ctx.Done():
				results[i] = result{reasons: []Reason{{Severity: Degraded, Component: s.name, Message: "its check did not answer within " + c.timeout.String()}}}
			}
		}()
	}
	wg.Wait()
	rep := Report{Status: OK, Reasons: []Reason{}, Details: map[string]any{}}
	for _, r := range results {
		rep.Reasons = append(rep.Reasons, r.reasons...)
		for k, v := range r.details {
			rep.Details[k] = v
		}
	}
	for _, r := range rep.Reasons {
		if r.Severity == Critical {
			rep.Status = Critical
		} else if rep.Status == OK {
			rep.Status = Degraded
		}
	}
	sort.SliceStable(rep.Reasons, func(i, j int) bool {
		return rep.Reasons[i].Severity == Critical && rep.Reasons[j].Severity != Critical
	})
	return rep
}

// Healthz answers the report: 200 when ok or degraded (the node serves),
// 503 when critical.
func (c *Checker) Healthz(w http.ResponseWriter, r *http.Request) {
	rep := c.Health(r.Context())
	status := http.StatusOK
	if rep.Status == Critical {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, rep)
}

// Livez answers 200 while the process serves HTTP; it checks nothing else
// on purpose.
func (c *Checker) Livez(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

// Readyz answers 200 when every readiness check passes, else 503 with
// what is not ready.
func (c *Checker) Readyz(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	checks := append([]named[Readiness](nil), c.ready...)
	c.mu.Unlock()
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, chk := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), c.timeout)
			defer cancel()
			errs[i] = chk.f(ctx)
		}()
	}
	wg.Wait()
	out := struct {
		Status  string            `json:"status"`
		Waiting map[string]string `json:"waiting_for,omitempty"`
	}{Status: "ready"}
	for i, err := range errs {
		if err != nil {
			if out.Waiting == nil {
				out.Waiting = map[string]string{}
			}
			out.Waiting[checks[i].name] = err.Error()
		}
	}
	status := http.StatusOK
	if out.Waiting != nil {
		out.Status, status = "not ready", http.StatusServiceUnavailable
	}
	writeJSON(w, status, out)
}

// Register serves /livez, /readyz, /healthz and /health on mux.
func (c *Checker) Register(mux *http.ServeMux) {
	mux.HandleFunc("/livez", c.Livez)
	mux.HandleFunc("/readyz", c.Readyz)
	mux.HandleFunc("/healthz", c.Healthz)
	mux.HandleFunc("/health", c.Healthz)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
