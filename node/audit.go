package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/metastore"
)

// The audit log: every admin call that changes something (any method but
// GET) by someone who signed it is recorded with who made it, from where,
// what it asked and how it ended, in the metadata store (so a cluster has
// one log). The newest auditKeep entries are kept. Requests nobody signed
// are not entries: they would let anyone who reaches the port evict the
// real ones. They are counted (strata_admin_auth_failures_total{code}),
// summed up in one log line per source per minute, and a source that keeps
// failing is slowed down (SlowDown) for the rest of the minute.

const (
	auditKeep    = 10000
	auditBodyMax = 2048
)

type auditLog struct {
	writes atomic.Int64

	refused *prometheus.CounterVec
	mu      sync.Mutex
	minute  time.Time      // start of the current counting window
	sources map[string]int // refusals per remote address in the window
}

const (
	// refusalsPerMinute is how many unauthenticated requests one address
	// gets answered in full per minute; the rest get SlowDown at once.
	refusalsPerMinute = 120
	// maxSources bounds the addresses tracked in a window; the rest are
	// counted together.
	maxSources = 4096
)

func (a *auditLog) register(reg prometheus.Registerer) {
	a.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_admin_auth_failures_total",
		Help: "Admin API requests refused before anyone was identified (bad or missing signature), by error code.",
	}, []string{"code"})
	reg.MustRegister(a.refused)
}

// throttled reports whether remote has used up its unauthenticated
// requests for this minute.
func (a *auditLog) throttled(remote string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return now.Sub(a.minute) < time.Minute && a.sources[remote] >= refusalsPerMinute
}

// refusal counts one unauthenticated request from remote; at the turn of
// a window it returns the previous window's counts for one log line.
func (a *auditLog) refusal(code, remote string, now time.Time) (summary map[string]int) {
	a.refused.WithLabelValues(code).Inc()
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Sub(a.minute) >= time.Minute {
		summary, a.sources, a.minute = a.sources, map[string]int{}, now
	}
	if _, ok := a.sources[remote]; !ok && len(a.sources) >= maxSources {
		remote = "(other addresses)"
	}
	a.sources[remote]++
	return summary
}

func (n *Node) auditMeta() metastore.Store { return n.claimMeta("audit") }

// statusWriter remembers the status an admin handler answered with.
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

// record writes an audit entry; a failure is logged, not returned (the
// action has happened).
func (n *Node) record(e admin.AuditEntry) {
	if len(e.Body) > auditBodyMax {
		e.Body = e.Body[:auditBodyMax] + "…"
	}
	e.Time, e.Node = time.Now().UTC(), n.cfg.NodeName
	b, _ := json.Marshal(e)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	key := e.Time.Format("20060102T150405.000000000Z") + "-" + n.cfg.NodeName + "-" + randomLower(4)
	meta := n.auditMeta()
	if err := meta.Put(ctx, key, b); err != nil {
		n.log.Error("audit log: cannot record an admin action", "path", e.Path, "principal", e.Principal, "err", err)
		return
	}
	if n.audit.writes.Add(1)%100 == 0 {
		kvs, err := meta.List(ctx, "")
		if err == nil && len(kvs) > auditKeep {
			for _, kv := range kvs[:len(kvs)-auditKeep] {
				meta.Delete(ctx, kv.Key)
			}
		}
	}
}

// auditHandlers serve the audit log: the newest ?limit=N entries
// (default 100), oldest first.
func (n *Node) auditHandlers() map[admin.Op]admin.Handler {
	return map[admin.Op]admin.Handler{admin.AuditList: func(w http.ResponseWriter, r *admin.Request) error {
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			l, err := strconv.Atoi(v)
			if err != nil || l < 1 || l > auditKeep {
				return admin.BadRequest("limit %q: want 1 to %d", v, auditKeep)
			}
			limit = l
		}
		kvs, err := n.auditMeta().List(r.Context(), "")
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
