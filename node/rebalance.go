package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/rebalancer"
	"github.com/strata-storage/strata/ring"
)

// Rebalancing on a node. Every ring change that moves slots (or that
// happens while a rebalance runs) stores the ring it replaces as a source
// and a job naming them, before the new ring is published; every node
// reads through the sources while the job is active, and the node that
// made the change runs the executor (another takes over when that node
// has been down for Config.RebalanceTakeover). The job lives in the
// metadata store: etcd in a cluster, pebble alone.

type rebalanceState struct {
	jobs *rebalancer.Jobs
	exec *rebalancer.Executor

	mu      sync.Mutex
	started bool            // jobs and exec are set
	job     *rebalancer.Job // last seen
	running string          // id of the job the executor runs here
	cancel  context.CancelFunc
	stopped chan struct{}
}

// jobOptions are the operator's settings for the job a ring change starts.
type jobOptions struct {
	Limit       *int64
	Concurrency *int
	rollsBack   string
}

func (n *Node) rebalanceMeta() metastore.Store {
	if n.clustered() {
		return n.etcd.Sub("rebalance/")
	}
	return metastore.NewPebble(n.db, "rebalance/")
}

// startRebalancer loads the job, reads through its sources, resumes it if
// it is this node's, and (in a cluster) follows changes to it.
func (n *Node) startRebalancer(ctx context.Context) {
	n.rb.jobs = &rebalancer.Jobs{Meta: n.rebalanceMeta()}
	n.rb.exec = &rebalancer.Executor{Store: n.store, Jobs: n.rb.jobs, Log: n.log, Self: n.cfg.NodeName}
	n.rb.mu.Lock()
	n.rb.started = true
	n.rb.mu.Unlock()
	n.registerRebalanceMetrics()
	n.jobChanged(ctx)
	if w, ok := n.rb.jobs.Meta.(metastore.Watcher); ok {
		n.goBackground(func() {
			w.Watch(ctx, "job", func(key string, _ []byte) {
				if key == "job" {
					n.jobChanged(ctx)
				}
			})
		})
		n.goBackground(func() { n.takeOverRebalance(ctx) })
	}
}

// jobChanged applies the stored job: sources on, or off when it ended;
// the executor started here if this node owns it.
func (n *Node) jobChanged(ctx context.Context) {
	job, _, err := n.rb.jobs.Load(ctx)
	if errors.Is(err, rebalancer.ErrNoJob) {
		return
	}
	if err != nil {
		n.log.Warn("rebalance job unreadable", "err", err)
		return
	}
	n.rb.mu.Lock()
	n.rb.job = job
	n.rb.mu.Unlock()
	if err := n.applySources(ctx, job); err != nil {
		n.log.Error("rebalance: cannot read through the source rings", "err", err)
	}
	if job.Active() && job.Owner == n.cfg.NodeName {
		n.runJob(ctx, job)
	}
}

// applySources makes the store read through an active job's source rings
// (and stop when it is not active).
func (n *Node) applySources(ctx context.Context, job *rebalancer.Job) error {
	if !job.Active() {
		return n.store.SetSources(nil)
	}
	rings, err := n.rb.jobs.Sources(ctx, job)
	if err != nil {
		return err
	}
	n.ringMu.Lock()
	defer n.ringMu.Unlock()
	var src []objectstore.Placement
	for _, r := range rings {
		for _, d := range r.Devices {
			if d.Node == n.cfg.NodeName && d.State != ring.Failed {
				if err := n.devs.Open(d); err != nil {
					return fmt.Errorf("device %s: %w", d.Name, err)
				}
			}
		}
		src = append(src, objectstore.Placement{Ring: r, Devices: n.devicesFor(r)})
	}
	return n.store.SetSources(src)
}

// runJob starts the executor for job unless it already runs it; another
// job running here is stopped first.
func (n *Node) runJob(ctx context.Context, job *rebalancer.Job) {
	n.rb.mu.Lock()
	if n.rb.running == job.ID {
		n.rb.mu.Unlock()
		return
	}
	if n.rb.cancel != nil {
		n.rb.cancel()
		stopped := n.rb.stopped
		n.rb.mu.Unlock()
		<-stopped
		n.rb.mu.Lock()
	}
	rctx, cancel := context.WithCancel(ctx)
	n.rb.running, n.rb.cancel, n.rb.stopped = job.ID, cancel, make(chan struct{})
	stopped := n.rb.stopped
	n.rb.mu.Unlock()
	n.goBackground(func() {
		defer close(stopped)
		defer func() {
			n.rb.mu.Lock()
			if n.rb.running == job.ID {
				n.rb.running, n.rb.cancel = "", nil
			}
			n.rb.mu.Unlock()
		}()
		for rctx.Err() == nil {
			err := n.executeJob(rctx, job)
			if err == nil || rctx.Err() != nil {
				return
			}
			n.log.Warn("rebalance: executor stopped; retrying", "job", job.ID, "err", err)
			select {
			case <-rctx.Done():
			case <-time.After(3 * time.Second):
			}
		}
	})
}

// executeJob waits until every node places by the job's target ring, runs
// the executor, and marks the job done when it finishes.
func (n *Node) executeJob(ctx context.Context, job *rebalancer.Job) error {
	if cur, _, err := n.rb.jobs.Load(ctx); err != nil {
		return err
	} else if cur.ID != job.ID || !cur.Active() || cur.Owner != n.cfg.NodeName {
		return nil // replaced, ended or taken over meanwhile
	}
	if err := n.waitRingEverywhere(ctx, job.Target); err != nil {
		return err
	}
	if err := n.applySources(ctx, job); err != nil {
		return err
	}
	sources, err := n.rb.jobs.Sources(ctx, job)
	if err != nil {
		return err
	}
	target := n.ring.Load()
	plan, err := rebalancer.NewPlan(sources, target, n.usedBytes(ctx), rebalancer.Dead(target))
	if err != nil {
		return err
	}
	cur, prog, err := n.rb.jobs.Load(ctx)
	if err != nil {
		return err
	}
	if cur.ID != job.ID || !cur.Active() || cur.Owner != n.cfg.NodeName {
		return nil // replaced, ended or taken over meanwhile
	}
	n.log.Info("rebalance running", "job", job.ID, "target", job.Target, "moves", len(plan.Moves), "units", len(plan.Units), "resumed", prog != nil)
	if err := n.rb.exec.Run(ctx, cur, prog, plan, sources, target); err != nil {
		return err
	}
	return n.finishJob(ctx, job.ID)
}

// finishJob marks the job done (if it is still the one stored) and drops
// its sources everywhere.
func (n *Node) finishJob(ctx context.Context, id string) error {
	n.ringMu.Lock()
	defer n.ringMu.Unlock()
	job, _, err := n.rb.jobs.Load(ctx)
	if err != nil {
		return err
	}
	if job.ID != id || !job.Active() {
		return nil
	}
	job.State = rebalancer.Done
	if err := n.rb.jobs.SaveJob(ctx, job); err != nil {
		return err
	}
	if err := n.store.SetSources(nil); err != nil {
		return err
	}
	return n.rb.jobs.DropSources(ctx, nil)
}

// waitRingEverywhere waits until this node, and every up member, places
// by version v (a node still on an older ring would write where the
// executor has already walked).
func (n *Node) waitRingEverywhere(ctx context.Context, v uint64) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		behind := ""
		if r := n.ring.Load(); r.Version < v {
			behind = n.cfg.NodeName
		} else if n.clustered() {
			members, err := cluster.ListMembers(ctx, n.etcd)
			if err != nil {
				return err
			}
			for _, m := range members {
				if m.State == "up" && m.RingVersion < v {
					behind = m.Name
				}
			}
		}
		if behind == "" {
			return nil
		}
		if time.Now().After(deadline) {
			if n.ring.Load().Version < v {
				return fmt.Errorf("this node has not applied ring v%d", v)
			}
			n.log.Warn("rebalance starts while a node still places by an older ring", "node", behind, "version", v)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// takeOverRebalance runs an active job whose owner has been down for
// RebalanceTakeover (its progress is in the metadata store).
func (n *Node) takeOverRebalance(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
		n.rb.mu.Lock()
		job := n.rb.job
		n.rb.mu.Unlock()
		if !job.Active() || job.Owner == n.cfg.NodeName {
			continue
		}
		members, err := cluster.ListMembers(ctx, n.etcd)
		if err != nil {
			continue
		}
		ownerDown := true
		var first string
		for _, m := range members {
			if m.Name == job.Owner && (m.State == "up" || time.Since(m.Heartbeat) < n.cfg.RebalanceTakeover) {
				ownerDown = false
			}
			if m.State == "up" && (first == "" || m.Name < first) {
				first = m.Name
			}
		}
		if !ownerDown || first != n.cfg.NodeName {
			continue // the first up node by name takes over, so only one does
		}
		n.ringMu.Lock()
		cur, _, err := n.rb.jobs.Load(ctx)
		if err == nil && cur.ID == job.ID && cur.Active() {
			n.log.Warn("rebalance: taking over from a node that is down", "job", job.ID, "owner", job.Owner)
			cur.Owner = n.cfg.NodeName
			err = n.rb.jobs.SaveJob(ctx, cur)
		}
		n.ringMu.Unlock()
		if err != nil {
			n.log.Warn("rebalance takeover", "err", err)
		}
	}
}

// usedBytes maps every device id to the shard bytes it holds (local
// devices measured, others from their heartbeats).
func (n *Node) usedBytes(ctx context.Context) map[uint32]int64 {
	used := map[uint32]int64{}
	if n.clustered() {
		if members, err := cluster.ListMembers(ctx, n.etcd); err == nil {
			for _, m := range members {
				for _, d := range m.Devices {
					used[d.ID] = d.UsedBytes
				}
			}
		}
	}
	for id, ld := range n.devs.Snapshot() {
		if ld.Store != nil {
			used[id] = ld.Store.Used()
		}
	}
	return used
}

// prepareJob stores the job a change from cur to next needs (ringMu held),
// before next is published, and returns it with a function that puts the
// previous job back if publishing fails. No job: the change moves nothing
// and none is active.
func (n *Node) prepareJob(ctx context.Context, cur, next *ring.Ring, opt jobOptions) (*rebalancer.Job, func(), error) {
	prev, _, err := n.rb.jobs.Load(ctx)
	if err != nil && !errors.Is(err, rebalancer.ErrNoJob) {
		return nil, nil, err
	}
	var sources []*ring.Ring
	if prev.Active() {
		if sources, err = n.rb.jobs.Sources(ctx, prev); err != nil {
			return nil, nil, err
		}
	}
	if ring.DiffRings(cur, next).Moved > 0 || len(sources) == 0 {
		sources = append(sources, cur)
	}
	plan, err := rebalancer.NewPlan(sources, next, n.usedBytes(ctx), rebalancer.Dead(next))
	if err != nil {
		return nil, nil, &admin.Error{Status: http.StatusConflict, Code: "CannotRebalance", Message: err.Error()}
	}
	if len(plan.Moves) == 0 && !prev.Active() {
		return nil, func() {}, nil
	}
	job := &rebalancer.Job{ID: newJobID(), State: rebalancer.Running, Owner: n.cfg.NodeName, Target: next.Version,
		Limit: n.cfg.RebalanceLimit, Concurrency: n.cfg.RebalanceConcurrency, Created: time.Now().UTC(), RollsBack: opt.rollsBack}
	if prev.Active() {
		job.Limit, job.Concurrency = prev.Limit, prev.Concurrency
	}
	if opt.Limit != nil {
		job.Limit = *opt.Limit
	}
	if opt.Concurrency != nil {
		job.Concurrency = *opt.Concurrency
	}
	for _, s := range sources {
		job.Sources = append(job.Sources, s.Version)
	}
	job.Plan = plan.Summarize(sources, next, job.Limit)
	if err := n.rb.jobs.SaveSource(ctx, cur); err != nil {
		return nil, nil, err
	}
	if err := n.rb.jobs.SaveJob(ctx, job); err != nil {
		return nil, nil, err
	}
	undo := func() {
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if prev != nil {
			n.rb.jobs.SaveJob(uctx, prev)
		} else {
			n.rb.jobs.Meta.Delete(uctx, "job")
		}
	}
	return job, undo, nil
}

func newJobID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rebalanceStatus is the job's status: live from the executor when it
// runs here, else the last checkpoint.
func (n *Node) rebalanceStatus(ctx context.Context) (rebalancer.Status, error) {
	if st, ok := n.rb.exec.Live(); ok {
		return st, nil
	}
	job, prog, err := n.rb.jobs.Load(ctx)
	if err != nil {
		return rebalancer.Status{}, err
	}
	return rebalancer.NewStatus(job, prog, false), nil
}

// setJobState pauses or resumes the active job.
func (n *Node) setJobState(ctx context.Context, to rebalancer.State) (*rebalancer.Job, error) {
	n.ringMu.Lock()
	defer n.ringMu.Unlock()
	job, _, err := n.rb.jobs.Load(ctx)
	if errors.Is(err, rebalancer.ErrNoJob) {
		return nil, &admin.Error{Status: http.StatusNotFound, Code: "NoRebalance", Message: "no rebalance was ever started"}
	}
	if err != nil {
		return nil, err
	}
	if !job.Active() {
		return nil, &admin.Error{Status: http.StatusConflict, Code: "RebalanceNotActive", Message: fmt.Sprintf("the last rebalance is %s", job.State)}
	}
	job.State = to
	return job, n.rb.jobs.SaveJob(ctx, job)
}

// setJobLimit changes the active job's bandwidth and concurrency limits.
func (n *Node) setJobLimit(ctx context.Context, opt jobOptions) (*rebalancer.Job, error) {
	n.ringMu.Lock()
	defer n.ringMu.Unlock()
	job, _, err := n.rb.jobs.Load(ctx)
	if err != nil || !job.Active() {
		return nil, &admin.Error{Status: http.StatusConflict, Code: "RebalanceNotActive", Message: "no rebalance is running"}
	}
	if opt.Limit != nil {
		job.Limit = *opt.Limit
	}
	if opt.Concurrency != nil {
		job.Concurrency = *opt.Concurrency
	}
	return job, n.rb.jobs.SaveJob(ctx, job)
}

// rollBack cancels the active job: the ring goes back to the newest
// source and a new job moves back what had moved.
func (n *Node) rollBack(ctx context.Context) (*rebalancer.Job, error) {
	job, _, err := n.rb.jobs.Load(ctx)
	if err != nil || !job.Active() {
		return nil, &admin.Error{Status: http.StatusConflict, Code: "RebalanceNotActive", Message: "no rebalance is running"}
	}
	sources, err := n.rb.jobs.Sources(ctx, job)
	if err != nil {
		return nil, err
	}
	last := sources[len(sources)-1]
	cur := n.ring.Load()
	dead := rebalancer.Dead(cur)
	for i, c := range last.SlotCounts() {
		if c > 0 && dead(last.Devices[i]) {
			return nil, &admin.Error{Status: http.StatusConflict, Code: "CannotRollBack", Message: fmt.Sprintf("the ring before this rebalance places shards on %s/%s, which has failed since; the rebuild must finish", last.Devices[i].Node, last.Devices[i].Name)}
		}
	}
	var next *rebalancer.Job
	err = n.changeRing(func(cur *ring.Ring) (*ring.Ring, error) {
		return last.WithVersion(cur.Version + 1), nil
	}, jobOptions{rollsBack: job.ID}, &next)
	return next, err
}

// deviceStateChange edits the state of every ring device matching pick,
// rebalances and starts the job; what the drain and fail commands do.
func (n *Node) deviceStateChange(what string, pick func(ring.Device) bool, state ring.State, opt jobOptions) (admin.RebalanceAnswer, error) {
	var ans admin.RebalanceAnswer
	var job *rebalancer.Job
	err := n.changeRing(func(rg *ring.Ring) (*ring.Ring, error) {
		next := rg
		found := 0
		for _, d := range rg.Devices {
			if !pick(d) {
				continue
			}
			found++
			var err error
			if next, err = next.SetState(d.ID, state); err != nil {
				return nil, err
			}
		}
		if found == 0 {
			return nil, &admin.Error{Status: http.StatusNotFound, Code: "NoSuchDevice", Message: fmt.Sprintf("the ring has no device on %s", what)}
		}
		return n.rebalanceRing(next, false, &ans)
	}, opt, &job)
	ans.Job = job
	if err != nil {
		return ans, err
	}
	// Block volume replicas on the nodes whose every device leaves.
	if n.volumes != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var nodes []string
		cur := n.ring.Load()
		for _, d := range cur.Devices {
			if pick(d) && !contains(nodes, d.Node) {
				nodes = append(nodes, d.Node)
			}
		}
		for _, d := range cur.Devices {
			if !pick(d) && contains(nodes, d.Node) {
				nodes = remove(nodes, d.Node) // the node keeps other devices
			}
		}
		moves, verr := n.volumes.Evacuate(ctx, nodes)
		ans.VolumeMoves = moves
		if verr != nil {
			ans.VolumeErrors = verr.Error()
		}
	}
	return ans, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func remove(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// rebalanceRing rebalances rg and fills ans.
func (n *Node) rebalanceRing(rg *ring.Ring, ignoreMinPartHours bool, ans *admin.RebalanceAnswer) (*ring.Ring, error) {
	next, res, err := rg.Rebalance(ring.RebalanceOptions{IgnoreMinPartHours: ignoreMinPartHours})
	if err != nil {
		return nil, err
	}
	used := n.usedBytes(context.Background())
	*ans = admin.RebalanceAnswer{Version: next.Version, Result: *res, BytesEstimate: res.BytesEstimate(used)}
	return next, nil
}

// planRebalance is what `rebalance start` would do now, without doing it.
func (n *Node) planRebalance(ctx context.Context, ignoreMinPartHours bool, limit int64) (rebalancer.Summary, error) {
	cur := n.ring.Load()
	next, _, err := cur.Rebalance(ring.RebalanceOptions{IgnoreMinPartHours: ignoreMinPartHours})
	if err != nil {
		return rebalancer.Summary{}, err
	}
	sources := []*ring.Ring{cur}
	if job, _, err := n.rb.jobs.Load(ctx); err == nil && job.Active() {
		if src, err := n.rb.jobs.Sources(ctx, job); err == nil {
			sources = append(src, cur)
		}
		if limit == 0 {
			limit = job.Limit
		}
	}
	if limit == 0 {
		limit = n.cfg.RebalanceLimit
	}
	plan, err := rebalancer.NewPlan(sources, next, n.usedBytes(ctx), rebalancer.Dead(next))
	if err != nil {
		return rebalancer.Summary{}, &admin.Error{Status: http.StatusConflict, Code: "CannotRebalance", Message: err.Error()}
	}
	return plan.Summarize(sources, next, limit), nil
}

// inZone and onNode pick ring devices by zone and by node.
func inZone(z string) func(ring.Device) bool {
	return func(d ring.Device) bool { return d.Zone == z }
}

func onNode(name string) func(ring.Device) bool {
	return func(d ring.Device) bool { return d.Node == name }
}
