package placement

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/rebalancer"
	"github.com/strata-storage/strata/ring"
)

// The rebalance admin API and its metrics: what operators call and see of
// the jobs rebalance.go runs.

// Handlers serve the ring, cluster and rebalance operations.
func (pl *Controller) Handlers() map[admin.Op]admin.Handler {
	all := pl.ringHandlers()
	for op, h := range pl.rebalanceHandlers() {
		all[op] = h
	}
	return all
}

// rebalanceHandlers serve the rebalance, drain, zone and halt operations.
func (pl *Controller) rebalanceHandlers() map[admin.Op]admin.Handler {
	request := func(r *admin.Request) (admin.RebalanceRequest, error) {
		var req admin.RebalanceRequest
		if err := r.Decode(&req, true); err != nil {
			return req, err
		}
		return req, req.Check()
	}
	opts := func(req admin.RebalanceRequest) jobOptions {
		return jobOptions{Limit: req.Limit, Concurrency: req.Concurrency}
	}
	stateChange := func(w http.ResponseWriter, what string, match func(ring.Device) bool, to ring.State, req admin.RebalanceRequest) error {
		ans, err := pl.deviceStateChange(what, match, to, opts(req))
		if err != nil {
			return err
		}
		return admin.WriteJSON(w, ans)
	}
	return map[admin.Op]admin.Handler{
		admin.RebalanceStatus: func(w http.ResponseWriter, r *admin.Request) error {
			st, err := pl.rebalanceStatus(r.Context())
			if errors.Is(err, rebalancer.ErrNoJob) {
				return &admin.Error{Status: http.StatusNotFound, Code: admin.CodeNoRebalance, Message: "no rebalance was ever started"}
			}
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, st)
		},
		admin.RebalancePlan: func(w http.ResponseWriter, r *admin.Request) error {
			req, err := request(r)
			if err != nil {
				return err
			}
			var limit int64
			if req.Limit != nil {
				limit = *req.Limit
			}
			sum, err := pl.planRebalance(r.Context(), req.IgnoreMinPartHours, limit)
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, sum)
		},
		admin.RebalanceStart: func(w http.ResponseWriter, r *admin.Request) error {
			req, err := request(r)
			if err != nil {
				return err
			}
			var ans admin.RebalanceAnswer
			var job *rebalancer.Job
			err = pl.changeRing(func(rg *ring.Ring) (*ring.Ring, error) {
				next, err := pl.rebalanceRing(rg, req.IgnoreMinPartHours, &ans)
				if err == nil && ans.Result.Moved == 0 {
					return nil, &admin.Error{Status: http.StatusConflict, Code: "NothingToMove", Message: "the ring is balanced: a rebalance would move nothing"}
				}
				return next, err
			}, opts(req), &job)
			if err != nil {
				return err
			}
			ans.Job = job
			return admin.WriteJSON(w, ans)
		},
		admin.RebalanceJob: func(w http.ResponseWriter, r *admin.Request) error {
			action, err := admin.Action(r, "pause", "resume", "cancel")
			if err != nil {
				return err
			}
			ctx := r.Context()
			if action == "cancel" {
				job, err := pl.rollBack(ctx)
				if err != nil {
					return err
				}
				return admin.WriteJSON(w, job)
			}
			to := rebalancer.Paused
			if action == "resume" {
				to = rebalancer.Running
			}
			job, err := pl.setJobState(ctx, to)
			if err != nil {
				return err
			}
			pl.rb.exec.Refresh(ctx)
			pl.jobChanged(pl.bgCtx)
			return admin.WriteJSON(w, job)
		},
		admin.RebalanceLimit: func(w http.ResponseWriter, r *admin.Request) error {
			req, err := request(r)
			if err != nil {
				return err
			}
			if req.Limit == nil && req.Concurrency == nil {
				return admin.BadRequest("give Limit or Concurrency")
			}
			job, err := pl.setJobLimit(r.Context(), opts(req))
			if err != nil {
				return err
			}
			pl.rb.exec.Refresh(r.Context())
			return admin.WriteJSON(w, job)
		},
		admin.NodeDrain: func(w http.ResponseWriter, r *admin.Request) error {
			req, err := request(r)
			if err != nil {
				return err
			}
			name := r.PathValue("name")
			return stateChange(w, "node "+name, onNode(name), ring.Draining, req)
		},
		admin.NodeRemove: func(w http.ResponseWriter, r *admin.Request) error {
			ans, err := pl.removeNode(r.Context(), r.PathValue("name"))
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, ans)
		},
		admin.ZoneChange: func(w http.ResponseWriter, r *admin.Request) error {
			action, err := admin.Action(r, "drain", "fail", "activate")
			if err != nil {
				return err
			}
			req, err := request(r)
			if err != nil {
				return err
			}
			state := map[string]ring.State{"drain": ring.Draining, "fail": ring.Failed, "activate": ring.Active}[action]
			zone := r.PathValue("zone")
			return stateChange(w, "zone "+zone, inZone(zone), state, req)
		},
	}
}

// registerRebalanceMetrics exports the job's figures: the same status the
// admin API answers with, read once per scrape.
func (pl *Controller) registerRebalanceMetrics() {
	if pl.cfg.Registry == nil {
		return
	}
	pl.cfg.Registry.MustRegister(&rebalanceCollector{pl: pl})
}

type rebalanceCollector struct{ pl *Controller }

var (
	rbActive   = prometheus.NewDesc("strata_rebalance_active", "1 while a rebalance is running or paused.", nil, nil)
	rbPaused   = prometheus.NewDesc("strata_rebalance_paused", "1 while the rebalance is paused.", nil, nil)
	rbPlanned  = prometheus.NewDesc("strata_rebalance_planned_bytes", "Bytes the running rebalance planned to move (estimate).", nil, nil)
	rbMoved    = prometheus.NewDesc("strata_rebalance_moved_bytes", "Shard bytes the rebalance wrote to their new devices.", nil, nil)
	rbRatio    = prometheus.NewDesc("strata_rebalance_progress_ratio", "Moved over planned bytes (1 when done).", nil, nil)
	rbETA      = prometheus.NewDesc("strata_rebalance_eta_seconds", "Seconds left at the rate measured so far (at the bandwidth limit in the first seconds).", nil, nil)
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
	st, err := c.pl.rebalanceStatus(ctx)
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

// ErrorOf is the admin answer for a handler's error: its own admin.Error,
// or one for the errors of the ring (whose edits this package serves),
// else a 500.
func ErrorOf(err error) *admin.Error {
	var ae *admin.Error
	if errors.As(err, &ae) {
		return ae
	}
	ae = &admin.Error{Status: http.StatusInternalServerError, Code: admin.CodeInternalError, Message: err.Error()}
	switch {
	case errors.Is(err, ring.ErrNoDevice):
		ae.Status, ae.Code = http.StatusNotFound, admin.CodeNoSuchDevice
	case errors.Is(err, ring.ErrLayout):
		ae.Status, ae.Code = http.StatusConflict, admin.CodeLayoutDoesNotFit
	case strings.HasPrefix(err.Error(), "ring: "):
		ae.Status, ae.Code = http.StatusBadRequest, admin.CodeInvalidArgument
	}
	return ae
}
