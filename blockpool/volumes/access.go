package volumes

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Export permissions: which NBD clients may attach which volume. A client
// is known by the common name of its TLS certificate; a volume lists the
// identities that may attach it ("*": any client with a certificate the
// server trusts). The list lives in the volume's record, so every node
// applies the same one. A server without TLS cannot tell clients apart and
// does not consult it (it then listens on loopback only by default).

// AnyClient grants every authenticated client.
const AnyClient = "*"

// ErrBadIdentity is returned for an identity that cannot be a common name.
var ErrBadIdentity = fmt.Errorf("volumes: invalid client identity")

// ValidIdentity reports whether id can name an NBD client: "*", or 1-64
// printable characters without spaces or commas.
func ValidIdentity(id string) bool {
	if id == AnyClient {
		return true
	}
	if id == "" || len(id) > 64 || strings.ContainsAny(id, " ,*") {
		return false
	}
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// SetAccess grants and revokes identities on volume name and returns the
// record.
func (m *Manager) SetAccess(ctx context.Context, name string, grant, revoke []string) (Record, error) {
	for _, id := range append(slices.Clone(grant), revoke...) {
		if !ValidIdentity(id) {
			return Record{}, fmt.Errorf("%w: %q", ErrBadIdentity, id)
		}
	}
	return m.updateRecord(ctx, name, func(r *Record) error {
		for _, id := range grant {
			if !slices.Contains(r.Access, id) {
				r.Access = append(r.Access, id)
			}
		}
		r.Access = slices.DeleteFunc(r.Access, func(id string) bool { return slices.Contains(revoke, id) })
		sort.Strings(r.Access)
		return nil
	})
}

// MayAttach reports whether the NBD client identity may see and attach
// volume name.
func (m *Manager) MayAttach(identity, name string) bool {
	if identity == "" {
		return false
	}
	rec, err := m.record(context.Background(), name)
	if err != nil {
		return false
	}
	return slices.Contains(rec.Access, identity) || slices.Contains(rec.Access, AnyClient)
}
