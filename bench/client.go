package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// client is the load generator's S3 client: SigV4 with UNSIGNED-PAYLOAD
// (as S3 SDKs sign over TLS), so the figures are the server's, not the
// client's SHA-256.
type client struct {
	base   string
	region string
	creds  aws.Credentials
	signer *v4.Signer
	hc     *http.Client
}

func newClient(endpoint, region, access, secret string) *client {
	return &client{base: endpoint, region: region, creds: aws.Credentials{AccessKeyID: access, SecretAccessKey: secret}, signer: v4.NewSigner(),
		hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 5 * time.Minute}}
}

// do sends one request and reads the whole answer; a status other than
// want is an error.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body []byte, want int) ([]byte, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := c.signer.SignHTTP(ctx, c.creds, req, "UNSIGNED-PAYLOAD", "s3", c.region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		err := fmt.Errorf("%s %s: %s: %.200s", method, path, resp.Status, out)
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w: %w", errNotFound, err)
		}
		return nil, err
	}
	return out, nil
}

// get is do for GETs whose body is only counted, not kept.
func (c *client) get(ctx context.Context, path string, buf []byte) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := c.signer.SignHTTP(ctx, c.creds, req, "UNSIGNED-PAYLOAD", "s3", c.region, time.Now()); err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.CopyBuffer(io.Discard, resp.Body, buf)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w: %w", errNotFound, err)
		}
	}
	return n, err
}

func (c *client) put(ctx context.Context, path string, body []byte) error {
	_, err := c.do(ctx, http.MethodPut, path, nil, body, http.StatusOK)
	return err
}

// multipart uploads size bytes to path in parts of part bytes (body is
// one part's worth, reused), parts in parallel.
func (c *client) multipart(ctx context.Context, path string, body []byte, parts int) error {
	out, err := c.do(ctx, http.MethodPost, path, url.Values{"uploads": {""}}, nil, http.StatusOK)
	if err != nil {
		return err
	}
	var init struct{ UploadId string }
	if err := xml.Unmarshal(out, &init); err != nil {
		return err
	}
	etags := make([]string, parts)
	errs := make(chan error, parts)
	for i := range parts {
		go func() {
			q := url.Values{"partNumber": {fmt.Sprint(i + 1)}, "uploadId": {init.UploadId}}
			req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.base+path+"?"+q.Encode(), bytes.NewReader(body))
			if err == nil {
				req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
				err = c.signer.SignHTTP(ctx, c.creds, req, "UNSIGNED-PAYLOAD", "s3", c.region, time.Now())
			}
			var resp *http.Response
			if err == nil {
				resp, err = c.hc.Do(req)
			}
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				etags[i] = resp.Header.Get("ETag")
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("part %d: %s", i+1, resp.Status)
				}
			}
			errs <- err
		}()
	}
	for range parts {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return err
	}
	var doc bytes.Buffer
	doc.WriteString("<CompleteMultipartUpload>")
	for i, e := range etags {
		fmt.Fprintf(&doc, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i+1, e)
	}
	doc.WriteString("</CompleteMultipartUpload>")
	_, err = c.do(ctx, http.MethodPost, path, url.Values{"uploadId": {init.UploadId}}, doc.Bytes(), http.StatusOK)
	return err
}

// listPage is one ListObjectsV2 page: keys, common prefixes and the
// continuation token ("" at the end). The page is counted, not decoded:
// encoding/xml would make the load generator, not the server, the limit
// of a listing (about as slow per key as the server's whole work).
func (c *client) listPage(ctx context.Context, bucket, prefix, delimiter, token string) (keys, prefixes int, next string, err error) {
	q := url.Values{"list-type": {"2"}, "prefix": {prefix}, "max-keys": {"1000"}}
	if delimiter != "" {
		q.Set("delimiter", delimiter)
	}
	if token != "" {
		q.Set("continuation-token", token)
	}
	out, err := c.do(ctx, http.MethodGet, "/"+bucket, q, nil, http.StatusOK)
	if err != nil {
		return 0, 0, "", err
	}
	keys = bytes.Count(out, []byte("<Key>"))
	prefixes = bytes.Count(out, []byte("<CommonPrefixes>"))
	if bytes.Contains(out, []byte("<IsTruncated>true</IsTruncated>")) {
		next = element(out, "NextContinuationToken")
		if next == "" {
			return 0, 0, "", fmt.Errorf("a truncated page without a continuation token: %.300s", out)
		}
	}
	return keys, prefixes, next, nil
}

// element is the text of the first <name> element of doc, unescaped.
func element(doc []byte, name string) string {
	open, end := []byte("<"+name+">"), []byte("</"+name+">")
	i := bytes.Index(doc, open)
	if i < 0 {
		return ""
	}
	rest := doc[i+len(open):]
	j := bytes.Index(rest, end)
	if j < 0 {
		return ""
	}
	var v string
	if err := xml.Unmarshal(append(append(append([]byte(nil), open...), rest[:j]...), end...), &v); err != nil {
		return ""
	}
	return v
}
