package main

import (
	"bytes"
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

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-storage/strata/s3api/sigv4"
)

// adminClient calls a running node's admin API, signed with the root
// credentials.
type adminClient struct {
	server, accessKey, secretKey, region, caFile string
}

func (t *adminClient) flags(pf *pflag.FlagSet) {
	pf.StringVar(&t.server, "server", "", "admin address of a running node, e.g. http://127.0.0.1:9001")
	pf.StringVar(&t.accessKey, "access-key", os.Getenv("STRATA_ROOT_USER"), "root access key for --server")
	pf.StringVar(&t.secretKey, "secret-key", os.Getenv("STRATA_ROOT_PASSWORD"), "root secret key for --server")
	pf.StringVar(&t.region, "region", "us-east-1", "signing region for --server")
	pf.StringVar(&t.caFile, "ca-file", "", "CA certificate (PEM) to verify an https --server")
}

// call sends a signed admin request; out is JSON-decoded, or filled with the
// raw body when it is a *[]byte.
func (t *adminClient) call(method, path string, body, out any) error {
	if t.accessKey == "" || t.secretKey == "" {
		return errors.New("--server needs the root credentials: --access-key/--secret-key or STRATA_ROOT_USER/STRATA_ROOT_PASSWORD")
	}
	base, err := url.Parse(strings.TrimSuffix(t.server, "/") + "/admin/v1/" + path)
	if err != nil || base.Host == "" {
		return fmt.Errorf("--server %q: want http(s)://host:port", t.server)
	}
	var payload []byte
	if body != nil {
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	req, err := http.NewRequest(method, base.String(), bytes.NewReader(payload))
	if err != nil {
		return err
	}
	if err := sigv4.Sign(req, t.accessKey, t.secretKey, t.region, payload, time.Now()); err != nil {
		return err
	}
	client := &http.Client{Timeout: 10 * time.Minute}
	if t.caFile != "" {
		pem, err := os.ReadFile(t.caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca-file %s: no certificates", t.caFile)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Code, Message string }
		if json.Unmarshal(data, &e) == nil && e.Code != "" {
			return fmt.Errorf("%s: %s (HTTP %d)", e.Code, e.Message, resp.StatusCode)
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = data
		return nil
	}
	return json.Unmarshal(data, out)
}

// emit writes v as JSON with -o json, else as the table print writes.
func emit(cmd *cobra.Command, output string, v any, print func(io.Writer)) error {
	if output == "json" {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(v)
	}
	print(cmd.OutOrStdout())
	return nil
}
