// Package gate is the admin API's entrance. It authenticates every
// request (SigV4 by root or an admin user, the body's SHA-256 signed),
// answers requests nobody signed without ever logging them as actions,
// slows down an address that keeps sending those, and records each call
// a signed caller made to change something in the audit log, which it
// also serves.
package gate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/s3api/sigv4"
)

const (
	// Keep is how many audit entries are kept (the newest).
	Keep    = 10000
	bodyMax = 2048
	// RefusalsPerMinute is how many unauthenticated requests one address
	// gets answered in full per minute; the rest get SlowDown at once.
	RefusalsPerMinute = 120
	// maxSources bounds the addresses tracked in a window; the rest are
	// counted together.
	maxSources = 4096
	maxBody    = 1 << 20
)

// Config is what the gate needs.
type Config struct {
	// Credentials look up the secret of any access key.
	Credentials sigv4.Credentials
	// RootKey is root's access key.
	RootKey string
	// AdminUser names the user holding accessKey if it may call the admin
	// API (an error otherwise).
	AdminUser func(ctx context.Context, accessKey string) (string, error)
	// Audit stores the audit log (etcd in a cluster, so there is one).
	Audit metastore.Store
	// Node names this node in the entries it records.
	Node string
	// ErrorOf maps a handler's error to its answer (nil: admin.Errors as
	// they are, anything else 500).
	ErrorOf  func(error) *admin.Error
	Registry prometheus.Registerer
	Log      *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Gate guards one admin listener.
type Gate struct {
	cfg     Config
	writes  atomic.Int64
	refused *prometheus.CounterVec

	mu      sync.Mutex
	minute  time.Time      // start of the current counting window
	sources map[string]int // refusals per remote address in the window
}

// New makes a gate.
func New(cfg Config) *Gate {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ErrorOf == nil {
		cfg.ErrorOf = func(err error) *admin.Error {
			var ae *admin.Error
			if errors.As(err, &ae) {
				return ae
			}
			return &admin.Error{Status: http.StatusInternalServerError, Code: admin.CodeInternalError, Message: err.Error()}
		}
	}
	g := &Gate{cfg: cfg}
	g.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_admin_auth_failures_total",
		Help: "Admin API requests refused before anyone was identified (bad or missing signature), by error code.",
	}, []string{"code"})
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(g.refused)
	}
	return g
}

// Serve is the admin API behind the gate.
func (g *Gate) Serve(mux *admin.Mux) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := &statusWriter{ResponseWriter: rw}
		now := g.cfg.Now()
		principal, body, err := g.authenticate(r)
		if principal == "" && err != nil && g.throttled(remoteHost(r), now) {
			// A signed request always goes through; one that is not, from
			// an address that sent too many, gets no verdict.
			g.refused.WithLabelValues(admin.CodeSlowDown).Inc()
			w.Header().Set("Retry-After", "60")
			admin.WriteError(w, &admin.Error{Status: http.StatusServiceUnavailable, Code: admin.CodeSlowDown, Message: "too many unauthenticated requests from this address; retry later"})
			return
		}
		if err == nil {
			err = mux.Serve(w, r, body)
		}
		var ae *admin.Error
		if err != nil {
			ae = g.cfg.ErrorOf(err)
			admin.WriteError(w, ae)
		}
		if principal == "" && ae != nil {
			// Nobody signed it: counted, never an audit entry.
			if summary := g.refusal(ae.Code, remoteHost(r), now); len(summary) > 0 {
				g.logRefusals(summary)
			}
			return
		}
		if r.Method != http.MethodGet {
			e := admin.AuditEntry{Principal: principal, Remote: remoteHost(r), Method: r.Method, Path: r.URL.RequestURI(), Body: string(body), Status: w.status}
			if ae != nil {
				e.Code = ae.Code
			}
			g.record(e)
		}
	})
}

// authenticate verifies the signature (root, or a user with admin
// rights) and the body against it, and names who signed.
func (g *Gate) authenticate(r *http.Request) (string, []byte, error) {
	auth, err := sigv4.Verify(r, g.cfg.Credentials, g.cfg.Now())
	if err != nil {
		code := admin.CodeAccessDenied
		var se *sigv4.Error
		if errors.As(err, &se) {
			code = se.Code
		}
		return "", nil, &admin.Error{Status: http.StatusForbidden, Code: code, Message: err.Error()}
	}
	principal := "root"
	if auth.AccessKey != g.cfg.RootKey {
		user, err := g.cfg.AdminUser(r.Context(), auth.AccessKey)
		if err != nil {
			return user, nil, &admin.Error{Status: http.StatusForbidden, Code: admin.CodeAccessDenied, Message: "the admin API answers root and admin users only"}
		}
		principal = user
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return principal, nil, admin.BadRequest("reading the body: %v", err)
	}
	if len(body) > maxBody {
		return principal, nil, admin.BadRequest("the body is over %d bytes", maxBody)
	}
	sum := sha256.Sum256(body)
	if auth.PayloadHash != hex.EncodeToString(sum[:]) {
		return principal, nil, &admin.Error{Status: http.StatusBadRequest, Code: admin.CodeBodyHashMismatch, Message: "admin requests must sign their body's SHA-256"}
	}
	return principal, body, nil
}

// throttled reports whether remote has used up its unauthenticated
// requests for this minute.
func (g *Gate) throttled(remote string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return now.Sub(g.minute) < time.Minute && g.sources[remote] >= RefusalsPerMinute
}

// refusal counts one unauthenticated request from remote; at the turn of
// a window it returns the previous window's counts for one log line.
func (g *Gate) refusal(code, remote string, now time.Time) (summary map[string]int) {
	g.refused.WithLabelValues(code).Inc()
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.minute) >= time.Minute {
		summary, g.sources, g.minute = g.sources, map[string]int{}, now
	}
	if _, ok := g.sources[remote]; !ok && len(g.sources) >= maxSources {
		remote = "(other addresses)"
	}
	g.sources[remote]++
	return summary
}

// Refused is how many unauthenticated requests were refused with code.
func (g *Gate) Refused(code string) float64 {
	var m dto.Metric
	if err := g.refused.WithLabelValues(code).Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// logRefusals writes one line for a minute of unauthenticated admin
// requests: the total and the busiest addresses.
func (g *Gate) logRefusals(bySource map[string]int) {
	total := 0
	type src struct {
		addr string
		n    int
	}
	var top []src
	for a, c := range bySource {
		total += c
		top = append(top, src{a, c})
	}
	sort.Slice(top, func(i, j int) bool { return top[i].n > top[j].n })
	var parts []string
	for i, s := range top {
		if i == 5 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%d)", s.addr, s.n))
	}
	g.cfg.Log.Warn("admin API: unauthenticated requests refused in the last minute", "count", total, "addresses", len(bySource), "top", strings.Join(parts, ", "))
}

// record writes an audit entry; a failure is logged, not returned (the
// action has happened).
func (g *Gate) record(e admin.AuditEntry) {
	if len(e.Body) > bodyMax {
		e.Body = e.Body[:bodyMax] + "…"
	}
	e.Time, e.Node = g.cfg.Now().UTC(), g.cfg.Node
	b, _ := json.Marshal(e)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var suffix [4]byte
	rand.Read(suffix[:])
	key := e.Time.Format("20060102T150405.000000000Z") + "-" + g.cfg.Node + "-" + hex.EncodeToString(suffix[:])
	meta := g.cfg.Audit
	if err := meta.Put(ctx, key, b); err != nil {
		g.cfg.Log.Error("audit log: cannot record an admin action", "path", e.Path, "principal", e.Principal, "err", err)
		return
	}
	if g.writes.Add(1)%100 == 0 {
		kvs, err := meta.List(ctx, "")
		if err == nil && len(kvs) > Keep {
			for _, kv := range kvs[:len(kvs)-Keep] {
				meta.Delete(ctx, kv.Key)
			}
		}
	}
}

// Handlers serve the audit log: the newest ?limit=N entries (default
// 100), oldest first.
func (g *Gate) Handlers() map[admin.Op]admin.Handler {
	return map[admin.Op]admin.Handler{admin.AuditList: func(w http.ResponseWriter, r *admin.Request) error {
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			l, err := strconv.Atoi(v)
			if err != nil || l < 1 || l > Keep {
				return admin.BadRequest("limit %q: want 1 to %d", v, Keep)
			}
			limit = l
		}
		kvs, err := g.cfg.Audit.List(r.Context(), "")
		if err != nil {
			return err
		}
		if len(kvs) > limit {
			kvs = kvs[len(kvs)-limit:]
		}
		out := make([]admin.AuditEntry, 0, len(kvs))
		for _, kv := range kvs {
			var e admin.AuditEntry
			if err := json.Unmarshal(kv.Value, &e); err != nil {
				return fmt.Errorf("audit entry %s: %w", kv.Key, err)
			}
			out = append(out, e)
		}
		return admin.WriteJSON(w, out)
	}}
}

func remoteHost(r *http.Request) string {
	if i := strings.LastIndex(r.RemoteAddr, ":"); i > 0 {
		return r.RemoteAddr[:i]
	}
	return r.RemoteAddr
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
	w.ResponseWriter.WriteHeader(s)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
