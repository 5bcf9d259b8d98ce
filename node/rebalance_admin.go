package node

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/rebalancer"
	"github.com/strata-storage/strata/ring"
)

// The rebalance admin API and its metrics: what operators call and see of
// the jobs rebalance.go runs.

// rebalanceRequest is the body of rebalance/plan, rebalance/start,
// rebalance/limit and the drain and fail calls.
type rebalanceRequest struct {
	IgnoreMinPartHours bool
	Limit              *int64
	Concurrency        *int
}

func (q rebalanceRequest) check() error {
	if q.Limit != nil && *q.Limit < 0 {
		return badRequest("Limit %d: want bytes per second >= 0 (0: no limit)", *q.Limit)
	}
	if q.Concurrency != nil && (*q.Concurrency < 1 || *q.Concurrency > 256) {
		return badRequest("Concurrency %d: want 1 to 256", *q.Concurrency)
	}
	return nil
}

// rebalanceRoute serves:
//
//	GET  /admin/v1/rebalance                   rebalancer.Status
//	POST /admin/v1/rebalance/plan              rebalanceRequest -> rebalancer.Summary (nothing changes)
//	POST /admin/v1/rebalance/start             rebalanceRequest -> RebalanceAnswer
//	POST /admin/v1/rebalance/{pause,resume}    -> rebalancer.Job
//	POST /admin/v1/rebalance/cancel            -> the rollback job
//	PUT  /admin/v1/rebalance/limit             rebalanceRequest -> rebalancer.Job
//	POST /admin/v1/nodes/{name}/drain          rebalanceRequest -> RebalanceAnswer
//	POST /admin/v1/zones/{zone}/{drain,fail}   rebalanceRequest -> RebalanceAnswer
//	POST /admin/v1/node/halt                   stop this process now (only with Halt set)
func (n *Node) rebalanceRoute(w http.ResponseWriter, r *http.Request, path string, body []byte) (bool, error) {
	ctx := r.Context()
	var req rebalanceRequest
	parse := func() error {
		if len(strings.TrimSpace(string(body))) == 0 {
			return nil
		}
		if err := strictJSON(body, &req); err != nil {
			return err
		}
		return req.check()
	}
	opts := func() jobOptions { return jobOptions{Limit: req.Limit, Concurrency: req.Concurrency} }
	post := r.Method == http.MethodPost
	parts := strings.Split(path, "/")
	switch {
	case path == "rebalance" && r.Method == http.MethodGet:
		st, err := n.rebalanceStatus(ctx)
		if errors.Is(err, rebalancer.ErrNoJob) {
			return true, &adminError{http.StatusNotFound, "NoRebalance", "no rebalance was ever started"}
		}
		if err != nil {
			return true, err
		}
		return true, writeJSON(w, st)
	case path == "rebalance/plan" && post:
		if err := parse(); err != nil {
			return true, err
		}
		var limit int64
		if req.Limit != nil {
			limit = *req.Limit
		}
		sum, err := n.planRebalance(ctx, req.IgnoreMinPartHours, limit)
		if err != nil {
			return true, err
		}
		return true, writeJSON(w, sum)
	case path == "rebalance/start" && post:
		if err := parse(); err != nil {
			return true, err
		}
		var ans RebalanceAnswer
		var job *rebalancer.Job
		err := n.changeRing(func(rg *ring.Ring) (*ring.Ring, error) {
			next, err := n.rebalanceRing(rg, req.IgnoreMinPartHours, &ans)
			if err == nil && ans.Result.Moved == 0 {
				return nil, &adminError{http.StatusConflict, "NothingToMove", "the ring is balanced: a rebalance would move nothing"}
			}
			return next, err
		}, opts(), &job)
		if err != nil {
			return true, err
		}
		ans.Job = job
		return true, writeJSON(w, ans)
	case (path == "rebalance/pause" || path == "rebalance/resume") && post:
		to := rebalancer.Paused
		if path == "rebalance/resume" {
			to = rebalancer.Running
		}
		job, err := n.setJobState(ctx, to)
		if err != nil {
			return true, err
		}
		n.rb.exec.Refresh(ctx)
		n.jobChanged(n.bgCtx)
		return true, writeJSON(w, job)
	case path == "rebalance/cancel" && post:
		job, err := n.rollBack(ctx)
		if err != nil {
			return true, err
		}
		return true, writeJSON(w, job)
	case path == "rebalance/limit" && r.Method == http.MethodPut:
		if err := parse(); err != nil {
			return true, err
		}
		if req.Limit == nil && req.Concurrency == nil {
			return true, badRequest("give Limit or Concurrency")
		}
		job, err := n.setJobLimit(ctx, opts())
		if err != nil {
			return true, err
		}
		n.rb.exec.Refresh(ctx)
		return true, writeJSON(w, job)
	case len(parts) == 3 && parts[0] == "nodes" && parts[2] == "drain" && post:
		if err := parse(); err != nil {
			return true, err
		}
		ans, err := n.deviceStateChange("node "+parts[1], onNode(parts[1]), ring.Draining, opts())
		if err != nil {
			return true, err
		}
		return true, writeJSON(w, ans)
	case len(parts) == 3 && parts[0] == "zones" && (parts[2] == "drain" || parts[2] == "fail") && post:
		if err := parse(); err != nil {
			return true, err
		}
		state := ring.Draining
		if parts[2] == "fail" {
			state = ring.Failed
		}
		ans, err := n.deviceStateChange("zone "+parts[1], inZone(parts[1]), state, opts())
		if err != nil {
			return true, err
		}
		return true, writeJSON(w, ans)
	case path == "node/halt" && post:
		if n.cfg.Halt == nil {
			return true, &adminError{http.StatusForbidden, "HaltDisabled", "this node was not started with --allow-halt"}
		}
		n.log.Warn("halting on request of the admin API")
		writeJSON(w, map[string]string{"halting": n.cfg.NodeName})
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go func() { time.Sleep(50 * time.Millisecond); n.cfg.Halt() }()
		return true, nil
	}
	return false, nil
}

// registerRebalanceMetrics exports the job's figures: the same status the
// admin API answers with, read once per scrape.
func (n *Node) registerRebalanceMetrics() {
	if n.Registry == nil {
		return
	}
	n.Registry.MustRegister(&rebalanceCollector{n: n})
}

type rebalanceCollector struct{ n *Node }

var (
	rbActive   = prometheus.NewDesc("strata_rebalance_active", "1 while a rebalance is running or paused.", nil, nil)
	rbPaused   = prometheus.NewDesc("strata_rebalance_paused", "1 while the rebalance is paused.", nil, nil)
	rbPlanned  = prometheus.NewDesc("strata_rebalance_planned_bytes", "Bytes the running rebalance planned to move (estimate).", nil, nil)
	rbMoved    = prometheus.NewDesc("strata_rebalance_moved_bytes", "Shard bytes the rebalance wrote to their new devices.", nil, nil)
	rbRatio    = prometheus.NewDesc("strata_rebalance_progress_ratio", "Moved over planned bytes (1 when done).", nil, nil)
	rbETA      = prometheus.NewDesc("strata_rebalance_eta_seconds", "Seconds left at the bandwidth limit (or the observed rate).", nil, nil)
	rbRate     = prometheus.NewDesc("strata_rebalance_rate_bytes_per_second", "Bytes moved per second of running time.", nil, nil)
	rbLimit    = prometheus.NewDesc("strata_rebalance_limit_bytes_per_second", "The bandwidth limit (0: none).", nil, nil)
	rbRecords  = prometheus.NewDesc("strata_rebalance_records", "Shard records handled by the rebalance, by outcome.", []string{"outcome"}, nil)
	rbRun      = prometheus.NewDesc("strata_rebalance_run_seconds", "Running time of the rebalance.", nil, nil)
	rbExecutor = prometheus.NewDesc("strata_rebalance_executor", "1 on the node running the rebalance's executor.", nil, nil)
)

func (c *rebalanceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{rbActive, rbPaused, rbPlanned, rbMoved, rbRatio, rbETA, rbRate, rbLimit, rbRecords, rbRun, rbExecutor} {
		ch <- d
	}
}

func (c *rebalanceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.n.rebalanceStatus(ctx)
	if err != nil || st.Job == nil {
		ch <- prometheus.MustNewConstMetric(rbActive, prometheus.GaugeValue, 0)
		return
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	g(rbActive, b(st.Job.Active()))
	g(rbPaused, b(st.Job.State == rebalancer.Paused))
	g(rbExecutor, b(st.Live))
	g(rbPlanned, float64(st.Job.Plan.Bytes))
	g(rbMoved, float64(st.Totals.Bytes))
	g(rbRatio, st.Ratio)
	g(rbETA, st.ETA)
	g(rbRate, st.Rate)
	g(rbLimit, float64(st.Job.Limit))
	if st.Progress != nil {
		g(rbRun, st.Progress.RunSeconds)
	}
	t := st.Totals
	for _, o := range []struct {
		name string
		v    int64
	}{{"copied", t.Copied}, {"found", t.Found}, {"stale", t.Stale}, {"rebuilt", t.Rebuilt}, {"deferred", t.Deferred}, {"lost", t.Lost}} {
		g(rbRecords, float64(o.v), o.name)
	}
}
