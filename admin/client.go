package admin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/strata-storage/strata/s3api/sigv4"
)

// Client calls one node's admin API, signing every request.
type Client struct {
	base                 *url.URL
	accessKey, secretKey string
	region               string
	http                 *http.Client
}

// Options configure a Client.
type Options struct {
	// Server is the node's admin address: http(s)://host:port.
	Server               string
	AccessKey, SecretKey string
	// Region signs the requests (default us-east-1).
	Region string
	// CAFile is a PEM file of the CAs that sign an https server's
	// certificate (default: the system's).
	CAFile string
	// TLS, when set, is used as it is (CAFile is then ignored).
	TLS *tls.Config
	// Timeout bounds one call (default 10 minutes: a verify or a
	// read-check reads every object).
	Timeout time.Duration
}

// New makes a client for o.Server.
func New(o Options) (*Client, error) {
	if o.AccessKey == "" || o.SecretKey == "" {
		return nil, errors.New("admin client: no credentials (the root access and secret key, or an admin user's)")
	}
	u, err := url.Parse(strings.TrimSuffix(o.Server, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("admin server %q: want http(s)://host:port", o.Server)
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	switch {
	case o.TLS != nil:
		tr.TLSClientConfig = o.TLS
	case o.CAFile != "":
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("admin client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("admin client CA %s: no certificates", o.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &Client{base: u, accessKey: o.AccessKey, secretKey: o.SecretKey, region: o.Region, http: &http.Client{Timeout: o.Timeout, Transport: tr}}, nil
}

// Server is the address the client calls.
func (c *Client) Server() string { return c.base.String() }

// At is a client with the same credentials for another node.
func (c *Client) At(server string) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("admin server %q: want http(s)://host:port", server)
	}
	cp := *c
	cp.base = u
	return &cp, nil
}

// path fills op's pattern with args, one per {segment} in order: the
// path, and the path escaped.
func path(op Op, args ...string) (rt Route, plain, escaped string, err error) {
	rt, ok := route(op)
	if !ok {
		return rt, "", "", fmt.Errorf("admin: no route for %s", op)
	}
	segs := strings.Split(rt.Path, "/")
	esc := make([]string, len(segs))
	i := 0
	for j, s := range segs {
		esc[j] = s
		if strings.HasPrefix(s, "{") {
			if i == len(args) {
				return rt, "", "", fmt.Errorf("admin: %s needs more path arguments", op)
			}
			if args[i] == "" {
				return rt, "", "", fmt.Errorf("admin: %s: an empty %s", op, s)
			}
			segs[j], esc[j] = args[i], url.PathEscape(args[i])
			i++
		}
	}
	if i != len(args) {
		return rt, "", "", fmt.Errorf("admin: %s takes %d path arguments", op, i)
	}
	return rt, Prefix + strings.Join(segs, "/"), Prefix + strings.Join(esc, "/"), nil
}

// call sends op (path arguments in args, body as JSON unless it is a
// json.RawMessage or nil) and decodes the answer into out (a *[]byte
// gets the raw body; nil discards it).
func (c *Client) call(ctx context.Context, op Op, query url.Values, body, out any, args ...string) error {
	rt, plain, escaped, err := path(op, args...)
	if err != nil {
		return err
	}
	var payload []byte
	switch b := body.(type) {
	case nil:
	case json.RawMessage:
		payload = b
	default:
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	u := *c.base
	base := strings.TrimSuffix(u.EscapedPath(), "/")
	u.Path, u.RawPath = strings.TrimSuffix(u.Path, "/")+plain, base+escaped
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, rt.Method, u.String(), bytes.NewReader(payload))
	if err != nil {
		return err
	}
	if err := sigv4.Sign(req, c.accessKey, c.secretKey, c.region, payload, time.Now()); err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("%s: reading the answer: %w", op, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			e.Code, e.Message = http.StatusText(resp.StatusCode), strings.TrimSpace(string(data))
		}
		return e
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: answer is not the JSON expected: %w", op, err)
	}
	return nil
}

// get is call for an answer of type T.
func get[T any](ctx context.Context, c *Client, op Op, body any, args ...string) (T, error) {
	var out T
	err := c.call(ctx, op, nil, body, &out, args...)
	return out, err
}

// ForwardedHeader marks a request one node forwarded to another (the node
// it came from); a forwarded request is not forwarded again.
const ForwardedHeader = "X-Strata-Forwarded-By"

// Answer is an answer as it came, for a node that passes it on.
type Answer struct {
	Status      int
	ContentType string
	Body        []byte
}

// Forward sends the request r (an admin call this node received) to the
// client's node as it is, signed with the client's credentials, and
// returns that node's answer whatever its status; from names this node.
func (c *Client) Forward(ctx context.Context, r *Request, from string) (Answer, error) {
	u := *c.base
	u.Path, u.RawPath = strings.TrimSuffix(u.Path, "/")+r.URL.Path, strings.TrimSuffix(u.EscapedPath(), "/")+r.URL.EscapedPath()
	u.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(r.Body))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set(ForwardedHeader, from)
	if err := sigv4.Sign(req, c.accessKey, c.secretKey, c.region, r.Body, time.Now()); err != nil {
		return Answer{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return Answer{}, fmt.Errorf("reading the forwarded answer: %w", err)
	}
	return Answer{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: data}, nil
}
