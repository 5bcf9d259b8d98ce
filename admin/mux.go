package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Request is what a handler gets: the HTTP request (PathValue gives the
// route's {segments}) and its body, already read and verified against
// the signature.
type Request struct {
	*http.Request
	Body []byte
}

// Decode reads the body as JSON into v, refusing unknown fields. An
// empty body leaves v as it is when optional, and is an error otherwise.
func (r *Request) Decode(v any, optional bool) error {
	if len(bytes.TrimSpace(r.Body)) == 0 {
		if optional {
			return nil
		}
		return BadRequest("this operation needs a JSON body")
	}
	return StrictJSON(r.Body, v)
}

// StrictJSON decodes body into v, refusing unknown fields.
func StrictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return BadRequest("malformed JSON body: %v", err)
	}
	return nil
}

// Handler serves one operation. It answers through w (WriteJSON and the
// like) or returns an error, which the mux writes.
type Handler func(w http.ResponseWriter, r *Request) error

// Mux dispatches admin requests by the route table.
type Mux struct {
	mux *http.ServeMux
}

type muxCall struct {
	body []byte
	err  error
}

type muxCallKey struct{}

// NewMux serves every route in Routes with its handler. An operation
// without a handler, or a handler for no operation, is an error: the
// table and the server cannot drift apart.
func NewMux(handlers map[Op]Handler) (*Mux, error) {
	m := &Mux{mux: http.NewServeMux()}
	for _, rt := range Routes {
		h, ok := handlers[rt.Op]
		if !ok {
			return nil, fmt.Errorf("admin: no handler for %s (%s %s)", rt.Op, rt.Method, rt.Path)
		}
		m.mux.HandleFunc(rt.Method+" "+Prefix+rt.Path, func(w http.ResponseWriter, r *http.Request) {
			call := r.Context().Value(muxCallKey{}).(*muxCall)
			call.err = h(w, &Request{Request: r, Body: call.body})
		})
	}
	for op := range handlers {
		if !slices.ContainsFunc(Routes, func(r Route) bool { return r.Op == op }) {
			return nil, fmt.Errorf("admin: handler for %s, which has no route", op)
		}
	}
	m.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		call := r.Context().Value(muxCallKey{}).(*muxCall)
		call.err = Errorf(http.StatusNotFound, CodeNoSuchOperation, "%s %s is not an admin operation", r.Method, r.URL.Path)
	})
	return m, nil
}

// Serve dispatches r (whose body was read into body) and returns the
// handler's error, unwritten: the caller writes it and audits the call.
func (m *Mux) Serve(w http.ResponseWriter, r *http.Request, body []byte) error {
	call := &muxCall{body: body}
	m.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), muxCallKey{}, call)))
	return call.err
}

// WriteJSON answers v with 200.
func WriteJSON(w http.ResponseWriter, v any) error { return WriteJSONStatus(w, http.StatusOK, v) }

// WriteJSONStatus answers v with status.
func WriteJSONStatus(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// NoContent answers 204.
func NoContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// WriteError answers e.
func WriteError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(e)
}

// Action is the route's {action} segment if it is one of allowed, else a
// 404 naming the ones there are.
func Action(r *Request, allowed ...string) (string, error) {
	a := r.PathValue("action")
	if !slices.Contains(allowed, a) {
		return "", Errorf(http.StatusNotFound, CodeNoSuchOperation, "%s %s is not an admin operation (want one of %s)", r.Method, r.URL.Path, strings.Join(allowed, ", "))
	}
	return a, nil
}
