package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strata-storage/strata/blockpool/volumes"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/rebalancer"
	"github.com/strata-storage/strata/ring"
	"github.com/strata-storage/strata/s3api/sigv4"
)

// The admin API: ring management on a running node, under /admin/v1/ on
// the admin listener, SigV4-signed with the root credentials (as MinIO's
// admin API is). Bodies and answers are JSON; errors are
// {"code": ..., "message": ...} with a 4xx/5xx status.
//
//	GET    /admin/v1/ring                      ring.Info
//	GET    /admin/v1/ring/file[?previous=1]    the ring file (binary)
//	POST   /admin/v1/ring/devices              add: ring.Device JSON -> ring.Info
//	PUT    /admin/v1/ring/devices/{id}/weight  {"Weight": w} -> ring.Info
//	PUT    /admin/v1/ring/devices/{id}/state   {"State": "draining"} -> ring.Info
//	DELETE /admin/v1/ring/devices/{id}         remove -> ring.Info
//	POST   /admin/v1/ring/rebalance            {"IgnoreMinPartHours": b} -> RebalanceAnswer
//	GET    /admin/v1/nodes                     []cluster.NodeInfo (state, zone, capacity, heartbeat)
//	POST   /admin/v1/cluster/verify            {"Repair": b} -> objectstore.RepairReport
//	POST   /admin/v1/cluster/read-check        objectstore.ReadCheck: every object read back in full
//	GET    /admin/v1/cluster/hints             {"pending": n}: keys this node still has to repair
//	…/pools, …/volumes                         block volumes (volumes.go)
//	…/scrub                                    scrubbing (scrub.go)
//	…/users, …/keys                            users and access keys (users.go)
//	…/buckets, …/{buckets,users}/{n}/quota     usage and quotas (quota.go)
//	…/storageclasses, …/claims                 ObjectBucketClaims (claims.go)
//	…/rebalance, …/nodes/{n}/drain, …/zones/{z}/{drain,fail}, …/node/halt   rebalancing (rebalance.go)

// RebalanceAnswer is what a rebalance through the admin API returns.
type RebalanceAnswer struct {
	Version       uint64
	Result        ring.RebalanceResult
	BytesEstimate int64
	// Job is the rebalance that moves the data (nil: nothing moves).
	Job *rebalancer.Job `json:",omitempty"`
	// VolumeMoves are the block volume replicas a drain or a failure
	// started to replace; VolumeErrors those it could not.
	VolumeMoves  []volumes.Evacuation `json:",omitempty"`
	VolumeErrors string               `json:",omitempty"`
}

type adminError struct {
	status        int
	Code, Message string
}

func (e *adminError) Error() string { return e.Code + ": " + e.Message }

func badRequest(format string, args ...any) error {
	return &adminError{http.StatusBadRequest, "InvalidArgument", fmt.Sprintf(format, args...)}
}

func (n *Node) adminAPI() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := &statusWriter{ResponseWriter: rw}
		principal, body, err := n.adminAuth(r)
		if principal == "" && err != nil && n.audit.throttled(remoteHost(r), time.Now()) {
			// A signed request always goes through; one that is not, from
			// an address that sent too many, gets no verdict.
			n.audit.refused.WithLabelValues("SlowDown").Inc()
			w.Header().Set("Retry-After", "60")
			writeAdminError(w, &adminError{http.StatusServiceUnavailable, "SlowDown", "too many unauthenticated requests from this address; retry later"})
			return
		}
		if err == nil {
			if done, aerr := n.auditRoute(w, r, strings.TrimPrefix(r.URL.Path, "/admin/v1/")); done {
				err = aerr
			} else {
				err = n.adminRoute(w, r, body)
			}
		}
		var ae *adminError
		if err != nil {
			if !errors.As(err, &ae) {
				ae = &adminError{http.StatusInternalServerError, "InternalError", err.Error()}
				switch {
				case errors.Is(err, ring.ErrNoDevice):
					ae.status, ae.Code = http.StatusNotFound, "NoSuchDevice"
				case errors.Is(err, ring.ErrLayout):
					ae.status, ae.Code = http.StatusConflict, "LayoutDoesNotFit"
				case strings.HasPrefix(err.Error(), "ring: "):
					ae.status, ae.Code = http.StatusBadRequest, "InvalidArgument"
				}
			}
			writeAdminError(w, ae)
		}
		if principal == "" && ae != nil {
			// Nobody signed it: counted, never an audit entry.
			if summary := n.audit.refusal(ae.Code, remoteHost(r), time.Now()); len(summary) > 0 {
				n.logRefusals(summary)
			}
			return
		}
		if r.Method != http.MethodGet {
			e := AuditEntry{Principal: principal, Remote: remoteHost(r), Method: r.Method, Path: r.URL.RequestURI(), Body: string(body), Status: w.status}
			if ae != nil {
				e.Code = ae.Code
			}
			n.record(e)
		}
	})
}

func writeAdminError(w http.ResponseWriter, ae *adminError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.status)
	json.NewEncoder(w).Encode(map[string]string{"code": ae.Code, "message": ae.Message})
}

// logRefusals writes one line for a minute of unauthenticated admin
// requests: the total and the busiest addresses.
func (n *Node) logRefusals(bySource map[string]int) {
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
	n.log.Warn("admin API: unauthenticated requests refused in the last minute", "count", total, "addresses", len(bySource), "top", strings.Join(parts, ", "))
}

// adminAuth verifies the signature (root, or a user with admin rights)
// and the body against it, and names who signed.
func (n *Node) adminAuth(r *http.Request) (string, []byte, error) {
	auth, err := sigv4.Verify(r, userCredentials{n}, time.Now())
	if err != nil {
		code := "AccessDenied"
		var se *sigv4.Error
		if errors.As(err, &se) {
			code = se.Code
		}
		return "", nil, &adminError{http.StatusForbidden, code, err.Error()}
	}
	principal := "root"
	if auth.AccessKey != n.Root.AccessKey {
		user, _ := n.principal(auth.AccessKey)
		u, err := n.iam.GetUser(r.Context(), user)
		if err != nil || !u.Admin {
			return user, nil, &adminError{http.StatusForbidden, "AccessDenied", "the admin API answers root and admin users only"}
		}
		principal = user
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return principal, nil, badRequest("reading the body: %v", err)
	}
	sum := sha256.Sum256(body)
	if auth.PayloadHash != hex.EncodeToString(sum[:]) {
		return principal, nil, &adminError{http.StatusBadRequest, "XAmzContentSHA256Mismatch", "admin requests must sign their body's SHA-256"}
	}
	return principal, body, nil
}

func (n *Node) adminRoute(w http.ResponseWriter, r *http.Request, body []byte) error {
	path := strings.TrimPrefix(r.URL.Path, "/admin/v1/")
	parts := strings.Split(path, "/")
	if done, err := n.volumeRoute(w, r, path, body); done {
		return err
	}
	if done, err := n.scrubRoute(w, r, path, body); done {
		return err
	}
	if done, err := n.rebalanceRoute(w, r, path, body); done {
		return err
	}
	if done, err := n.usersRoute(w, r, path, body); done {
		return err
	}
	if done, err := n.quotaRoute(w, r, path, body); done {
		return err
	}
	if done, err := n.claimsRoute(w, r, path, body); done {
		return err
	}
	switch {
	case path == "ring" && r.Method == http.MethodGet:
		return writeJSON(w, n.CurrentRing().Info())
	case path == "ring/file" && r.Method == http.MethodGet:
		rg := n.CurrentRing()
		if r.URL.Query().Get("previous") != "" {
			n.ringMu.Lock()
			rg = n.prev
			n.ringMu.Unlock()
			if rg == nil {
				return &adminError{http.StatusNotFound, "NoPreviousRing", "the ring has not changed since this node started"}
			}
		}
		b, err := rg.MarshalBinary()
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, err = w.Write(b)
		return err
	case path == "ring/devices" && r.Method == http.MethodPost:
		var d ring.Device
		if err := strictJSON(body, &d); err != nil {
			return err
		}
		if d.Node == "" {
			d.Node = n.cfg.NodeName
		}
		if err := n.checkDeviceNode(r.Context(), d.Node); err != nil {
			return err
		}
		return n.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) {
			if d.ID == 0 {
				if _, taken := rg.Index(0); taken {
					d.ID = rg.NextID()
				}
			}
			return rg.AddDevice(d)
		})
	case len(parts) >= 3 && parts[0] == "ring" && parts[1] == "devices":
		id, err := strconv.ParseUint(parts[2], 10, 32)
		if err != nil {
			return badRequest("device id %q is not a number", parts[2])
		}
		switch {
		case len(parts) == 3 && r.Method == http.MethodDelete:
			return n.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) { return rg.RemoveDevice(uint32(id)) })
		case len(parts) == 4 && parts[3] == "weight" && r.Method == http.MethodPut:
			var req struct{ Weight *float64 }
			if err := strictJSON(body, &req); err != nil {
				return err
			}
			if req.Weight == nil {
				return badRequest("missing Weight")
			}
			return n.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) { return rg.SetWeight(uint32(id), *req.Weight) })
		case len(parts) == 4 && parts[3] == "rebuild" && r.Method == http.MethodPost:
			ans, err := n.rebuildDevice(uint32(id))
			if err != nil {
				return err
			}
			return writeJSON(w, ans)
		case len(parts) == 4 && parts[3] == "state" && r.Method == http.MethodPut:
			var req struct{ State *ring.State }
			if err := strictJSON(body, &req); err != nil {
				return err
			}
			if req.State == nil || *req.State == ring.Removing {
				return badRequest("State must be active, draining or failed (remove a device with DELETE)")
			}
			return n.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) { return rg.SetState(uint32(id), *req.State) })
		}
	case path == "ring/rebalance" && r.Method == http.MethodPost:
		var req struct{ IgnoreMinPartHours bool }
		if len(bytes.TrimSpace(body)) > 0 {
			if err := strictJSON(body, &req); err != nil {
				return err
			}
		}
		var ans RebalanceAnswer
		var job *rebalancer.Job
		err := n.changeRing(func(rg *ring.Ring) (*ring.Ring, error) {
			return n.rebalanceRing(rg, req.IgnoreMinPartHours, &ans)
		}, jobOptions{}, &job)
		ans.Job = job
		if err != nil {
			return err
		}
		return writeJSON(w, ans)
	case path == "nodes" && r.Method == http.MethodGet:
		members, err := n.Members(r.Context())
		if err != nil {
			return err
		}
		return writeJSON(w, members)
	case path == "cluster/verify" && r.Method == http.MethodPost:
		var req struct{ Repair bool }
		if len(bytes.TrimSpace(body)) > 0 {
			if err := strictJSON(body, &req); err != nil {
				return err
			}
		}
		rep, err := n.store.Verify(r.Context(), req.Repair)
		if errors.Is(err, objectstore.ErrMoving) {
			return &adminError{http.StatusConflict, "RebalanceInProgress", "a rebalance is moving records: verify without --repair, or wait for it (strata rebalance status)"}
		}
		if err != nil {
			return &adminError{http.StatusServiceUnavailable, "VerifyIncomplete", err.Error()}
		}
		return writeJSON(w, rep)
	case path == "cluster/read-check" && r.Method == http.MethodPost:
		rc, err := n.store.CheckReadable(r.Context(), 8)
		if err != nil {
			return err
		}
		return writeJSON(w, rc)
	case path == "cluster/hints" && r.Method == http.MethodGet:
		pending, err := n.store.PendingHints(r.Context())
		if err != nil {
			return err
		}
		return writeJSON(w, map[string]int{"pending": pending})
	}
	return &adminError{http.StatusNotFound, "NoSuchAdminOperation", fmt.Sprintf("%s /admin/v1/%s is not an admin operation", r.Method, path)}
}

func (n *Node) editRing(w http.ResponseWriter, edit func(*ring.Ring) (*ring.Ring, error)) error {
	var info ring.Info
	err := n.changeRing(func(rg *ring.Ring) (*ring.Ring, error) {
		next, err := edit(rg)
		if err == nil {
			info = next.Info()
		}
		return next, err
	}, jobOptions{}, nil)
	if err != nil {
		return err
	}
	return writeJSON(w, info)
}

// changeRing applies a ring change. The rebalance job the change needs
// (moves from the old placement, or a job already running) is stored
// first (prepareJob); then, on one node: save the ring file (the old one
// kept as ring.prev) and switch placement; in a cluster: publish the ring
// in etcd (if nobody changed it meanwhile) and switch; every other node
// switches when it sees it. A failure before the switch leaves the old
// ring and job in force. The job (if any) is returned in jobOut and
// started here.
func (n *Node) changeRing(change func(*ring.Ring) (*ring.Ring, error), opt jobOptions, jobOut **rebalancer.Job) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	job, err := n.changeRingLocked(ctx, change, opt)
	if err != nil {
		return err
	}
	if jobOut != nil {
		*jobOut = job
	}
	if job != nil {
		n.jobChanged(context.WithoutCancel(n.bgCtx))
	}
	return nil
}

func (n *Node) changeRingLocked(ctx context.Context, change func(*ring.Ring) (*ring.Ring, error), opt jobOptions) (*rebalancer.Job, error) {
	n.ringMu.Lock()
	defer n.ringMu.Unlock()
	cur := n.ring.Load()
	next, err := change(cur)
	if err != nil {
		return nil, err
	}
	job, undo, err := n.prepareJob(ctx, cur, next, opt)
	if err != nil {
		return nil, err
	}
	if err := n.switchRing(ctx, cur, next); err != nil {
		undo()
		return nil, err
	}
	return job, nil
}

// switchRing makes next the ring in force (ringMu held).
func (n *Node) switchRing(ctx context.Context, cur, next *ring.Ring) error {
	if n.clustered() {
		if err := n.publishRing(ctx, cur, next); err != nil {
			return err
		}
		return n.applyRing(next)
	}
	for _, d := range next.Devices {
		if d.Node == n.cfg.NodeName {
			if _, err := n.openDevice(d); err != nil {
				return fmt.Errorf("device %s: %w", d.Name, err)
			}
		}
	}
	if err := cur.Save(filepath.Join(n.cfg.DataDir, "ring.prev")); err != nil {
		return err
	}
	if err := next.Save(filepath.Join(n.cfg.DataDir, "ring")); err != nil {
		return err
	}
	return n.applyRing(next)
}

func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("malformed JSON body: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}
