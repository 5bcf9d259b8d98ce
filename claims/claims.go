// Package claims reads ObjectBucketClaims (objectbucket.io/v1alpha1, as
// Rook's lib-bucket-provisioner defines them) and writes what a claim
// gives a pod: a ConfigMap with the bucket's endpoint and name and a
// Secret with its keys, as Kubernetes YAML or as environment lines. The
// types are written here from the resource's documented shape; nothing
// of Kubernetes is imported.
package claims

import (
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Claim is an ObjectBucketClaim. A claim as kubectl exports it (with the
// object metadata the API server keeps and the status the provisioner
// wrote) is one too: those fields say nothing about what is asked, so they
// are read and kept but change nothing; any other field is refused.
type Claim struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`
	// Status is the provisioner's report (phase: Bound…), not an ask.
	Status map[string]any `json:"status,omitempty"`
}

// Metadata names a claim; the rest of Kubernetes' object metadata is
// accepted as it comes.
type Metadata struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`

	Annotations                map[string]string `json:"annotations,omitempty"`
	UID                        string            `json:"uid,omitempty"`
	ResourceVersion            string            `json:"resourceVersion,omitempty"`
	Generation                 int64             `json:"generation,omitempty"`
	CreationTimestamp          *string           `json:"creationTimestamp,omitempty"`
	DeletionTimestamp          *string           `json:"deletionTimestamp,omitempty"`
	DeletionGracePeriodSeconds *int64            `json:"deletionGracePeriodSeconds,omitempty"`
	Finalizers                 []string          `json:"finalizers,omitempty"`
	GenerateName               string            `json:"generateName,omitempty"`
	SelfLink                   string            `json:"selfLink,omitempty"`
	OwnerReferences            []map[string]any  `json:"ownerReferences,omitempty"`
	ManagedFields              []map[string]any  `json:"managedFields,omitempty"`
}

// Spec is what a claim asks for.
type Spec struct {
	BucketName         string            `json:"bucketName,omitempty"`
	GenerateBucketName string            `json:"generateBucketName,omitempty"`
	StorageClassName   string            `json:"storageClassName"`
	AdditionalConfig   map[string]string `json:"additionalConfig,omitempty"`
	// ObjectBucketName is the ObjectBucket a provisioner bound the claim
	// to; written by it, read and kept.
	ObjectBucketName string `json:"objectBucketName,omitempty"`
}

// Kind and version accepted.
const (
	APIVersion = "objectbucket.io/v1alpha1"
	Kind       = "ObjectBucketClaim"
)

// ErrInvalid reports a claim that is not one, or asks what cannot be.
var ErrInvalid = errors.New("invalid claim")

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// Parse reads a claim from YAML (or JSON) and checks it.
func Parse(doc []byte) (Claim, error) {
	var c Claim
	if err := yaml.UnmarshalStrict(doc, &c); err != nil {
		return c, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return c, c.Check()
}

// Check validates a claim and fills the default namespace.
func (c *Claim) Check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case c.APIVersion != APIVersion:
		return bad("apiVersion %q, want %s", c.APIVersion, APIVersion)
	case c.Kind != Kind:
		return bad("kind %q, want %s", c.Kind, Kind)
	case !dnsLabel.MatchString(c.Metadata.Name):
		return bad("metadata.name %q is not a DNS label", c.Metadata.Name)
	}
	if c.Metadata.Namespace == "" {
		c.Metadata.Namespace = "default"
	}
	if !dnsLabel.MatchString(c.Metadata.Namespace) {
		return bad("metadata.namespace %q is not a DNS label", c.Metadata.Namespace)
	}
	s := c.Spec
	switch {
	case s.BucketName == "" && s.GenerateBucketName == "":
		return bad("set spec.bucketName or spec.generateBucketName")
	case s.BucketName != "" && s.GenerateBucketName != "" && !strings.HasPrefix(s.BucketName, s.GenerateBucketName+"-"):
		// Both are set on a claim a provisioner bound (it writes the
		// generated name back); any other pair asks for two buckets.
		return bad("spec.bucketName %q was not generated from spec.generateBucketName %q", s.BucketName, s.GenerateBucketName)
	case s.StorageClassName == "":
		return bad("spec.storageClassName is required")
	case s.GenerateBucketName != "" && len(s.GenerateBucketName) > 57:
		return bad("spec.generateBucketName is longer than 57 characters")
	}
	for k := range s.AdditionalConfig {
		if k != "maxSize" && k != "maxObjects" {
			return bad("spec.additionalConfig.%s is not supported (maxSize, maxObjects)", k)
		}
	}
	if _, _, err := c.Limits(); err != nil {
		return err
	}
	return nil
}

// ID is namespace/name.
func (c *Claim) ID() string { return c.Metadata.Namespace + "/" + c.Metadata.Name }

// Limits parses additionalConfig's maxSize (a Kubernetes quantity: 2G,
// 5Gi, 1000) and maxObjects; 0 is no bound.
func (c *Claim) Limits() (maxBytes, maxObjects int64, err error) {
	if v := c.Spec.AdditionalConfig["maxSize"]; v != "" {
		if maxBytes, err = ParseQuantity(v); err != nil {
			return 0, 0, fmt.Errorf("%w: spec.additionalConfig.maxSize: %v", ErrInvalid, err)
		}
	}
	if v := c.Spec.AdditionalConfig["maxObjects"]; v != "" {
		if maxObjects, err = strconv.ParseInt(v, 10, 64); err != nil || maxObjects < 0 {
			return 0, 0, fmt.Errorf("%w: spec.additionalConfig.maxObjects %q is not a count", ErrInvalid, v)
		}
	}
	return maxBytes, maxObjects, nil
}

// ParseQuantity parses a Kubernetes quantity of bytes: an integer with an
// optional decimal (k, M, G, T, P, E) or binary (Ki … Ei) suffix.
func ParseQuantity(s string) (int64, error) {
	suffixes := []struct {
		s string
		m int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50}, {"Ei", 1 << 60},
		{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18}}
	mult := int64(1)
	num := s
	for _, x := range suffixes {
		if strings.HasSuffix(s, x.s) {
			num, mult = strings.TrimSuffix(s, x.s), x.m
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<63-1)/mult {
		return 0, fmt.Errorf("%q is not a quantity of bytes", s)
	}
	return n * mult, nil
}

// Grant is what a bound claim gives: where the bucket is and its keys.
type Grant struct {
	Namespace, Name string
	Host            string
	Port            int
	Bucket          string
	Region          string
	SubRegion       string
	AccessKey       string
	SecretKey       string
}

func (g Grant) config() map[string]string {
	return map[string]string{
		"BUCKET_HOST": g.Host, "BUCKET_PORT": strconv.Itoa(g.Port), "BUCKET_NAME": g.Bucket,
		"BUCKET_REGION": g.Region, "BUCKET_SUBREGION": g.SubRegion,
	}
}

func (g Grant) secret() map[string]string {
	return map[string]string{"AWS_ACCESS_KEY_ID": g.AccessKey, "AWS_SECRET_ACCESS_KEY": g.SecretKey}
}

// YAML renders the ConfigMap and the Secret, named like the claim, as
// one Kubernetes YAML stream.
func (g Grant) YAML() ([]byte, error) {
	type meta struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	}
	labels := map[string]string{"bucket-provisioner": "strata", "objectbucket.io/claim": g.Name}
	cm := struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   meta              `json:"metadata"`
		Data       map[string]string `json:"data"`
	}{"v1", "ConfigMap", meta{g.Name, g.Namespace, labels}, g.config()}
	data := map[string]string{}
	for k, v := range g.secret() {
		data[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	sec := struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   meta              `json:"metadata"`
		Type       string            `json:"type"`
		Data       map[string]string `json:"data"`
	}{"v1", "Secret", meta{g.Name, g.Namespace, labels}, "Opaque", data}
	a, err := yaml.Marshal(cm)
	if err != nil {
		return nil, err
	}
	b, err := yaml.Marshal(sec)
	if err != nil {
		return nil, err
	}
	return append(append(append([]byte("---\n"), a...), "---\n"...), b...), nil
}

// Env renders the same values as KEY=value lines, sorted.
func (g Grant) Env() string {
	all := g.config()
	for k, v := range g.secret() {
		all[k] = v
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, all[k])
	}
	return b.String()
}
