package main

// http.go: health, version, metrics, debug and the HTTP conference request,
// on one small server that listens on loopback by default.

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"
)

// HTTP server timeouts: requests here are tiny, so anything slow is a stuck
// or hostile client, and must not pin a goroutine forever.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 10 * time.Second
	httpWriteTimeout      = 30 * time.Second // a conference request may wait for a MUC join
	httpIdleTimeout       = 60 * time.Second
)

// HTTPServer serves the operator and client HTTP endpoints.
type HTTPServer struct {
	m        *Main
	mux      *http.ServeMux
	srv      *http.Server
	ln       net.Listener
	shutting atomic.Bool
}

// NewHTTPServer registers every route.
func NewHTTPServer(m *Main) *HTTPServer {
	h := &HTTPServer{m: m, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /about/health", h.health)
	h.mux.HandleFunc("GET /about/version", h.version)
	h.srv = &http.Server{
		Handler:           h.mux,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
	}
	return h
}

// Listen binds the configured address (":0" style ports are resolved).
func (h *HTTPServer) Listen() error {
	ln, err := net.Listen("tcp", h.m.Config.HTTP.Listen)
	if err != nil {
		return errors.New("http: listen on " + h.m.Config.HTTP.Listen + ": " + err.Error())
	}
	h.ln = ln
	return nil
}

// Addr is the bound address.
func (h *HTTPServer) Addr() string {
	if h.ln == nil {
		return ""
	}
	return h.ln.Addr().String()
}

// Serve blocks serving requests until Shutdown.
func (h *HTTPServer) Serve() {
	if err := h.srv.Serve(h.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		h.m.Log.Error("http server stopped", "err", err)
	}
}

// SetShuttingDown makes health report 503 while the focus drains.
func (h *HTTPServer) SetShuttingDown() { h.shutting.Store(true) }

// Shutdown stops the server, waiting up to d for requests in flight.
func (h *HTTPServer) Shutdown(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_ = h.srv.Shutdown(ctx)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// healthStatus is the body of /about/health.
type healthStatus struct {
	Healthy bool     `json:"healthy"`
	XMPP    string   `json:"xmpp"`
	Reasons []string `json:"reasons,omitempty"`
}

// Check runs the health checks: is the XMPP session up, and is the focus
// not shutting down (later: is there an operational bridge).
func (h *HTTPServer) Check() healthStatus {
	st := healthStatus{Healthy: true, XMPP: "connected"}
	if up, err := h.m.XMPP.Connected(); !up {
		st.Healthy = false
		st.XMPP = "disconnected"
		reason := "XMPP session is not up"
		if err != nil {
			reason += ": " + err.Error()
		}
		st.Reasons = append(st.Reasons, reason)
	}
	if h.shutting.Load() {
		st.Healthy = false
		st.Reasons = append(st.Reasons, "shutting down")
	}
	return st
}

func (h *HTTPServer) health(w http.ResponseWriter, r *http.Request) {
	st := h.Check()
	code := http.StatusOK
	if !st.Healthy {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, st)
}

func (h *HTTPServer) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"name": "minifocus", "version": version, "os": runtime.GOOS})
}
