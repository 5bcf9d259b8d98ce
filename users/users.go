// Package users is Strata's users as the S3 layer and the admin API see
// them: the secrets that check signatures, the principal behind a key,
// canonical ids and the ACL grantees they name, users' policies (parsed
// once, cached briefly), the bucket limit, and the user and key
// operations of the admin API. The users themselves live in package iam.
package users

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/iam"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/s3api/policy"
)

// Buckets lists the store's buckets (to count a user's).
type Buckets interface {
	ListBuckets(ctx context.Context) []objectstore.BucketInfo
}

// Config is what the directory needs.
type Config struct {
	IAM                 *iam.Store
	RootKey, RootSecret string
	Buckets             Buckets
}

// Directory answers who signed and what they may do.
type Directory struct {
	cfg      Config
	ids      canonicalIDs
	policies policyCache
}

// New makes a directory over cfg.IAM.
func New(cfg Config) *Directory { return &Directory{cfg: cfg} }

// Follow drops what is cached whenever users or keys change in w (their
// store, when it is shared: etcd in a cluster), so a key disabled on
// another node stops signing here at once, not when its cache entry ages
// out. It returns when ctx ends.
func (d *Directory) Follow(ctx context.Context, w metastore.Watcher) {
	w.Watch(ctx, "", func(string, []byte) { d.Invalidate() })
}

// Invalidate drops what is cached (a user or key changed elsewhere).
func (d *Directory) Invalidate() {
	d.cfg.IAM.Invalidate()
	d.policies.clear()
}

// AdminUser names the user holding access if it may call the admin API.
func (d *Directory) AdminUser(ctx context.Context, access string) (string, error) {
	user, _ := d.Principal(access)
	u, err := d.cfg.IAM.GetUser(ctx, user)
	if err != nil {
		return user, err
	}
	if !u.Admin {
		return user, fmt.Errorf("user %s is not an admin", user)
	}
	return user, nil
}

// SecretKey finds the secret of the root key or of a user's key.
func (d *Directory) SecretKey(access string) (string, bool) {
	if access == d.cfg.RootKey {
		return d.cfg.RootSecret, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	secret, _, ok := d.cfg.IAM.Lookup(ctx, access)
	return secret, ok
}

// Principal names the user of a key that signed a request (root: "",
// true).
func (d *Directory) Principal(access string) (string, bool) {
	if access == d.cfg.RootKey {
		return "", true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, user, _ := d.cfg.IAM.Lookup(ctx, access)
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

// CanonicalID is a user's S3 canonical id ("" is root).
func (d *Directory) CanonicalID(ctx context.Context, user string) string {
	if user == "" {
		return d.cfg.IAM.RootCanonicalID()
	}
	d.ids.mu.Lock()
	c, ok := d.ids.m[user]
	d.ids.mu.Unlock()
	if ok && time.Now().Before(c.expires) {
		return c.id
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u, err := d.cfg.IAM.GetUser(ctx, user)
	if err != nil {
		// Gone (or unreachable): its name still identifies it.
		return iam.CanonicalIDOf(iam.User{Name: user})
	}
	id := iam.CanonicalIDOf(u)
	d.ids.mu.Lock()
	if d.ids.m == nil {
		d.ids.m = map[string]cachedID{}
	}
	d.ids.m[user] = cachedID{id, time.Now().Add(iam.CacheTTL)}
	d.ids.mu.Unlock()
	return id
}

// UserByEmail finds the user an ACL grant's emailAddress names.
func (d *Directory) UserByEmail(ctx context.Context, email string) (user string, ok bool) {
	return d.findUser(ctx, func(u iam.User) bool { return u.Email != "" && strings.EqualFold(u.Email, email) })
}

// UserByCanonicalID finds the user of a canonical id ("" and true for
// root).
func (d *Directory) UserByCanonicalID(ctx context.Context, id string) (user string, ok bool) {
	if id == d.cfg.IAM.RootCanonicalID() {
		return "", true
	}
	return d.findUser(ctx, func(u iam.User) bool { return u.CanonicalID == id })
}

// findUser is the first user match accepts.
func (d *Directory) findUser(ctx context.Context, match func(iam.User) bool) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	users, err := d.cfg.IAM.ListUsers(ctx)
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

// Handlers serve the user and key operations.
func (d *Directory) Handlers() map[admin.Op]admin.Handler {
	return map[admin.Op]admin.Handler{
		admin.UsersList: func(w http.ResponseWriter, r *admin.Request) error {
			users, err := d.cfg.IAM.ListUsers(r.Context())
			return IAMError(err, func() error { return admin.WriteJSON(w, users) })
		},
		admin.UserCreate: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.UserCreateRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			u, err := d.cfg.IAM.CreateUserWith(r.Context(), iam.User{Name: req.Name, Admin: req.Admin, Email: req.Email})
			return IAMError(err, func() error { return admin.WriteJSONStatus(w, http.StatusCreated, u) })
		},
		admin.UserGet: func(w http.ResponseWriter, r *admin.Request) error {
			name := r.PathValue("name")
			u, err := d.cfg.IAM.GetUser(r.Context(), name)
			if err != nil {
				return IAMError(err, nil)
			}
			keys, err := d.cfg.IAM.ListKeys(r.Context(), name)
			return IAMError(err, func() error { return admin.WriteJSON(w, admin.UserWithKeys{User: u, Keys: keys}) })
		},
		admin.UserDelete: func(w http.ResponseWriter, r *admin.Request) error {
			name := r.PathValue("name")
			for _, b := range d.cfg.Buckets.ListBuckets(r.Context()) {
				if b.Owner == name {
					return &admin.Error{Status: http.StatusConflict, Code: "UserOwnsBuckets", Message: fmt.Sprintf("user %s owns bucket %s: delete its buckets first", name, b.Name)}
				}
			}
			return IAMError(d.cfg.IAM.DeleteUser(r.Context(), name), func() error { return admin.NoContent(w) })
		},
		admin.UserEnable: func(w http.ResponseWriter, r *admin.Request) error {
			action, err := admin.Action(r, "disable", "enable")
			if err != nil {
				return err
			}
			u, err := d.cfg.IAM.SetUserDisabled(r.Context(), r.PathValue("name"), action == "disable")
			return IAMError(err, func() error { return admin.WriteJSON(w, u) })
		},
		admin.UserKeys: func(w http.ResponseWriter, r *admin.Request) error {
			name := r.PathValue("name")
			if _, err := d.cfg.IAM.GetUser(r.Context(), name); err != nil {
				return IAMError(err, nil)
			}
			keys, err := d.cfg.IAM.ListKeys(r.Context(), name)
			return IAMError(err, func() error { return admin.WriteJSON(w, keys) })
		},
		admin.KeyCreate: func(w http.ResponseWriter, r *admin.Request) error {
			k, secret, err := d.cfg.IAM.CreateKey(r.Context(), r.PathValue("name"))
			return IAMError(err, func() error {
				return admin.WriteJSONStatus(w, http.StatusCreated, admin.NewKey{Key: k, SecretKey: secret})
			})
		},
		admin.UserPolicySet: func(w http.ResponseWriter, r *admin.Request) error {
			if _, err := policy.ParseIdentity(r.Body); err != nil {
				return &admin.Error{Status: http.StatusBadRequest, Code: "MalformedPolicy", Message: err.Error()}
			}
			return d.setUserPolicy(w, r, r.Body)
		},
		admin.UserPolicyClear: func(w http.ResponseWriter, r *admin.Request) error {
			return d.setUserPolicy(w, r, nil)
		},
		admin.UserSetAdmin: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.AdminRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			if req.Admin == nil {
				return admin.BadRequest("missing Admin")
			}
			u, err := d.cfg.IAM.SetUserAdmin(r.Context(), r.PathValue("name"), *req.Admin)
			return IAMError(err, func() error { return admin.WriteJSON(w, u) })
		},
		admin.KeysList: func(w http.ResponseWriter, r *admin.Request) error {
			keys, err := d.cfg.IAM.ListKeys(r.Context(), "")
			return IAMError(err, func() error { return admin.WriteJSON(w, keys) })
		},
		admin.KeyDelete: func(w http.ResponseWriter, r *admin.Request) error {
			return IAMError(d.cfg.IAM.DeleteKey(r.Context(), r.PathValue("access")), func() error { return admin.NoContent(w) })
		},
		admin.KeyEnable: func(w http.ResponseWriter, r *admin.Request) error {
			action, err := admin.Action(r, "disable", "enable")
			if err != nil {
				return err
			}
			k, err := d.cfg.IAM.SetKeyDisabled(r.Context(), r.PathValue("access"), action == "disable")
			return IAMError(err, func() error { return admin.WriteJSON(w, k) })
		},
	}
}

func (d *Directory) setUserPolicy(w http.ResponseWriter, r *admin.Request, doc []byte) error {
	name := r.PathValue("name")
	u, err := d.cfg.IAM.SetUserPolicy(r.Context(), name, doc)
	d.policies.forget(name)
	return IAMError(err, func() error { return admin.WriteJSON(w, u) })
}

// IAMError maps iam's errors to the admin API's, or runs ok when err is
// nil.
func IAMError(err error, ok func() error) error {
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

// MayCreateBucket enforces a user's bucket limit.
func (d *Directory) MayCreateBucket(ctx context.Context, user string) bool {
	u, err := d.cfg.IAM.GetUser(ctx, user)
	if err != nil || u.MaxBuckets <= 0 {
		return err == nil
	}
	owned := 0
	for _, b := range d.cfg.Buckets.ListBuckets(ctx) {
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

// UserPolicy is the parsed policy attached to user (nil: none).
func (d *Directory) UserPolicy(ctx context.Context, user string) *policy.Policy {
	c := &d.policies
	c.mu.Lock()
	e, ok := c.entries[user]
	c.mu.Unlock()
	if ok && time.Since(e.at) < iam.CacheTTL {
		return e.p
	}
	e = policyEntry{at: time.Now()}
	if u, err := d.cfg.IAM.GetUser(ctx, user); err == nil && len(u.Policy) > 0 {
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
