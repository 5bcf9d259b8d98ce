package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/iam"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/s3api/policy"
)

// Users and access keys beside the root user: the iam store (in etcd in a
// cluster, sealed with a key derived from the cluster secret; in pebble
// alone, sealed with <data-dir>/master.key), the S3 credentials that look
// keys up in it, and the admin API that manages it.

const masterKeyFile = "master.key"

func (n *Node) openIAM() error {
	var meta metastore.Store
	var key []byte
	var err error
	if n.clustered() {
		meta = n.etcd.Sub("iam/")
		key, err = iam.MasterKeyFromSecret(n.cfg.ClusterSecret)
	} else {
		meta = metastore.NewPebble(n.db, "iam/")
		key, err = iam.LoadOrCreateMasterKey(filepath.Join(n.cfg.DataDir, masterKeyFile))
	}
	if err != nil {
		return fmt.Errorf("iam master key: %w", err)
	}
	if n.iam, err = iam.New(meta, key); err != nil {
		return err
	}
	if w, ok := meta.(metastore.Watcher); ok {
		// A key or user disabled on another node stops signing here at
		// once, not when the cache entry ages out.
		n.goBackground(func() {
			w.Watch(n.bgCtx, "", func(string, []byte) {
				n.iam.Invalidate()
				n.policies.clear()
			})
		})
	}
	return nil
}

// userCredentials finds the secret of the root key or of a user's key.
type userCredentials struct{ n *Node }

func (c userCredentials) SecretKey(access string) (string, bool) {
	if access == c.n.Root.AccessKey {
		return c.n.Root.SecretKey, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	secret, _, ok := c.n.iam.Lookup(ctx, access)
	return secret, ok
}

// principal names the user of a key that signed a request.
func (n *Node) principal(access string) (string, bool) {
	if access == n.Root.AccessKey {
		return "", true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, user, _ := n.iam.Lookup(ctx, access)
	return user, false
}

// canonicalIDs caches users' canonical ids for a few seconds (the S3 layer
// asks for one in every listing).
type canonicalIDs struct {
	mu sync.Mutex
	m  map[string]cachedID
}

type cachedID struct {
	id      string
	expires time.Time
}

// canonicalID is a user's S3 canonical id ("" is root).
func (n *Node) canonicalID(ctx context.Context, user string) string {
	if user == "" {
		return n.iam.RootCanonicalID()
	}
	n.ids.mu.Lock()
	c, ok := n.ids.m[user]
	n.ids.mu.Unlock()
	if ok && time.Now().Before(c.expires) {
		return c.id
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u, err := n.iam.GetUser(ctx, user)
	if err != nil {
		// Gone (or unreachable): its name still identifies it.
		return iam.CanonicalIDOf(iam.User{Name: user})
	}
	id := iam.CanonicalIDOf(u)
	n.ids.mu.Lock()
	if n.ids.m == nil {
		n.ids.m = map[string]cachedID{}
	}
	n.ids.m[user] = cachedID{id, time.Now().Add(iam.CacheTTL)}
	n.ids.mu.Unlock()
	return id
}

// userByEmail finds the user an ACL grant's emailAddress names.
func (n *Node) userByEmail(ctx context.Context, email string) (user string, ok bool) {
	return n.findUser(ctx, func(u iam.User) bool { return u.Email != "" && strings.EqualFold(u.Email, email) })
}

// userByCanonicalID finds the user of a canonical id ("" and true for
// root).
func (n *Node) userByCanonicalID(ctx context.Context, id string) (user string, ok bool) {
	if id == n.iam.RootCanonicalID() {
		return "", true
	}
	return n.findUser(ctx, func(u iam.User) bool { return u.CanonicalID == id })
}

// findUser is the first user match accepts.
func (n *Node) findUser(ctx context.Context, match func(iam.User) bool) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	users, err := n.iam.ListUsers(ctx)
	if err != nil {
		return "", false
	}
	for _, u := range users {
		if match(u) {
			return u.Name, true
		}
	}
	return "", false
}

// userHandlers serve the user and key operations.
func (n *Node) userHandlers() map[admin.Op]admin.Handler {
	return map[admin.Op]admin.Handler{
		admin.UsersList: func(w http.ResponseWriter, r *admin.Request) error {
			users, err := n.iam.ListUsers(r.Context())
			return iamErr(err, func() error { return admin.WriteJSON(w, users) })
		},
		admin.UserCreate: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.UserCreateRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			u, err := n.iam.CreateUserWith(r.Context(), iam.User{Name: req.Name, Admin: req.Admin, Email: req.Email})
			return iamErr(err, func() error { return admin.WriteJSONStatus(w, http.StatusCreated, u) })
		},
		admin.UserGet: func(w http.ResponseWriter, r *admin.Request) error {
			name := r.PathValue("name")
			u, err := n.iam.GetUser(r.Context(), name)
			if err != nil {
				return iamErr(err, nil)
			}
			keys, err := n.iam.ListKeys(r.Context(), name)
			return iamErr(err, func() error { return admin.WriteJSON(w, admin.UserWithKeys{User: u, Keys: keys}) })
		},
		admin.UserDelete: func(w http.ResponseWriter, r *admin.Request) error {
			name := r.PathValue("name")
			for _, b := range n.store.ListBuckets(r.Context()) {
				if b.Owner == name {
					return &admin.Error{Status: http.StatusConflict, Code: "UserOwnsBuckets", Message: fmt.Sprintf("user %s owns bucket %s: delete its buckets first", name, b.Name)}
				}
			}
			return iamErr(n.iam.DeleteUser(r.Context(), name), func() error { return admin.NoContent(w) })
		},
		admin.UserEnable: func(w http.ResponseWriter, r *admin.Request) error {
			action, err := admin.Action(r, "disable", "enable")
			if err != nil {
				return err
			}
			u, err := n.iam.SetUserDisabled(r.Context(), r.PathValue("name"), action == "disable")
			return iamErr(err, func() error { return admin.WriteJSON(w, u) })
		},
		admin.UserKeys: func(w http.ResponseWriter, r *admin.Request) error {
			name := r.PathValue("name")
			if _, err := n.iam.GetUser(r.Context(), name); err != nil {
				return iamErr(err, nil)
			}
			keys, err := n.iam.ListKeys(r.Context(), name)
			return iamErr(err, func() error { return admin.WriteJSON(w, keys) })
		},
		admin.KeyCreate: func(w http.ResponseWriter, r *admin.Request) error {
			k, secret, err := n.iam.CreateKey(r.Context(), r.PathValue("name"))
			return iamErr(err, func() error {
				return admin.WriteJSONStatus(w, http.StatusCreated, admin.NewKey{Key: k, SecretKey: secret})
			})
		},
		admin.UserPolicySet: func(w http.ResponseWriter, r *admin.Request) error {
			if _, err := policy.ParseIdentity(r.Body); err != nil {
				return &admin.Error{Status: http.StatusBadRequest, Code: "MalformedPolicy", Message: err.Error()}
			}
			return n.setUserPolicy(w, r, r.Body)
		},
		admin.UserPolicyClear: func(w http.ResponseWriter, r *admin.Request) error {
			return n.setUserPolicy(w, r, nil)
		},
		admin.UserSetAdmin: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.AdminRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			if req.Admin == nil {
				return admin.BadRequest("missing Admin")
			}
			u, err := n.iam.SetUserAdmin(r.Context(), r.PathValue("name"), *req.Admin)
			return iamErr(err, func() error { return admin.WriteJSON(w, u) })
		},
		admin.KeysList: func(w http.ResponseWriter, r *admin.Request) error {
			keys, err := n.iam.ListKeys(r.Context(), "")
			return iamErr(err, func() error { return admin.WriteJSON(w, keys) })
		},
		admin.KeyDelete: func(w http.ResponseWriter, r *admin.Request) error {
			return iamErr(n.iam.DeleteKey(r.Context(), r.PathValue("access")), func() error { return admin.NoContent(w) })
		},
		admin.KeyEnable: func(w http.ResponseWriter, r *admin.Request) error {
			action, err := admin.Action(r, "disable", "enable")
			if err != nil {
				return err
			}
			k, err := n.iam.SetKeyDisabled(r.Context(), r.PathValue("access"), action == "disable")
			return iamErr(err, func() error { return admin.WriteJSON(w, k) })
		},
	}
}

func (n *Node) setUserPolicy(w http.ResponseWriter, r *admin.Request, doc []byte) error {
	name := r.PathValue("name")
	u, err := n.iam.SetUserPolicy(r.Context(), name, doc)
	n.policies.forget(name)
	return iamErr(err, func() error { return admin.WriteJSON(w, u) })
}

// iamErr maps iam errors to admin errors, or runs ok.
func iamErr(err error, ok func() error) error {
	switch {
	case err == nil && ok != nil:
		return ok()
	case err == nil:
		return nil
	case errors.Is(err, iam.ErrNoSuchUser):
		return &admin.Error{Status: http.StatusNotFound, Code: "NoSuchUser", Message: err.Error()}
	case errors.Is(err, iam.ErrNoSuchKey):
		return &admin.Error{Status: http.StatusNotFound, Code: "NoSuchKey", Message: err.Error()}
	case errors.Is(err, iam.ErrUserExists):
		return &admin.Error{Status: http.StatusConflict, Code: "UserExists", Message: err.Error()}
	case errors.Is(err, iam.ErrInvalidName):
		return admin.BadRequest("%v", err)
	}
	return err
}

// mayCreateBucket enforces a user's bucket limit.
func (n *Node) mayCreateBucket(ctx context.Context, user string) bool {
	u, err := n.iam.GetUser(ctx, user)
	if err != nil || u.MaxBuckets <= 0 {
		return err == nil
	}
	owned := 0
	for _, b := range n.store.ListBuckets(ctx) {
		if b.Owner == user {
			owned++
		}
	}
	return owned < u.MaxBuckets
}

// policyCache holds users' parsed policies for iam.CacheTTL, so a request
// does not read the metadata store.
type policyCache struct {
	mu      sync.Mutex
	entries map[string]policyEntry
}

type policyEntry struct {
	p  *policy.Policy
	at time.Time
}

func (c *policyCache) clear() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}

func (c *policyCache) forget(user string) {
	c.mu.Lock()
	delete(c.entries, user)
	c.mu.Unlock()
}

// userPolicy is the parsed policy attached to user (nil: none).
func (n *Node) userPolicy(ctx context.Context, user string) *policy.Policy {
	c := &n.policies
	c.mu.Lock()
	e, ok := c.entries[user]
	c.mu.Unlock()
	if ok && time.Since(e.at) < iam.CacheTTL {
		return e.p
	}
	e = policyEntry{at: time.Now()}
	if u, err := n.iam.GetUser(ctx, user); err == nil && len(u.Policy) > 0 {
		if p, err := policy.ParseIdentity(u.Policy); err == nil {
			e.p = p
		}
	} else if err != nil && !errors.Is(err, iam.ErrNoSuchUser) {
		return nil // the store failed: no grant, and nothing cached
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]policyEntry{}
	}
	c.entries[user] = e
	c.mu.Unlock()
	return e.p
}
