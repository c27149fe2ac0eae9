// Command minifocus is a Jitsi Meet conference focus: a small replacement for
// Jicofo. It logs in to Prosody as focus@auth.<domain>, answers conference
// requests, owns the conference rooms, finds videobridges in the brewery room
// and puts each participant on a bridge with Colibri2 and Jingle.
//
// Usage:
//
//	minifocus -config /etc/minifocus/config.toml
//	minifocus -check-config -config config.toml
//	minifocus -version
//
// See README.md for the configuration and config.toml.example for every key.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "doctor" {
		os.Exit(runDoctor(os.Args[2:], os.Stdout, os.Getenv))
	}
	fs := flag.NewFlagSet("minifocus", flag.ContinueOnError)
	configPath := fs.String("config", "", "path of the TOML config file (optional when the environment has the settings)")
	checkOnly := fs.Bool("check-config", false, "validate the configuration, print it with secrets redacted, and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	healthcheck := fs.Bool("healthcheck", false, "exit 0 if the running focus's /about/health says healthy (for container health checks)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *showVersion {
		fmt.Printf("minifocus %s %s/%s %s\n", version, runtime.GOOS, runtime.GOARCH, runtime.Version())
		return
	}
	if *configPath == "" {
		if _, err := os.Stat("/config/config.toml"); err == nil {
			*configPath = "/config/config.toml"
		}
	}
	cfg, err := LoadConfig(*configPath, os.Getenv)
	cfg.StateFile = resolveStateFile(cfg.StateFile, os.Getenv)
	if *checkOnly {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Print(cfg.CheckReport())
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *healthcheck {
		os.Exit(probeHealth(cfg.HTTP.Listen))
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// One scheduler thread. The focus is a few goroutines handing
		// stanzas to each other; with more threads each hand-off wakes an
		// idle one, which cost a third of its CPU in the load runs. Prosody,
		// single-threaded, spends ten times the focus's CPU on every join,
		// so one thread is never the limit. GOMAXPROCS=n overrides.
		runtime.GOMAXPROCS(1)
	}
	// SIGTERM and SIGINT (restarts, upgrades, docker compose up) hand the
	// conferences over to the next process; SIGUSR1 ends them for good
	// (sessions terminated, bridges released, rooms left). See handover.go.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	m := NewMain(cfg, NewLogger(cfg.Log, os.Stderr))
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	go func() {
		sig := <-sigs
		signal.Stop(sigs) // a second signal has its default effect
		if sig == syscall.SIGUSR1 {
			m.Log.Info("SIGUSR1: stopping for good; conferences end")
		} else {
			m.RequestHandover()
		}
		stop()
	}()
	if err := m.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// Main is the whole program, startable and stoppable in-process (tests run
// several at once).
type Main struct {
	Config  Config
	Log     *slog.Logger
	XMPP    *XMPPClient
	HTTP    *HTTPServer
	Bridges *Bridges
	Focus   *Focus
	Metrics *Metrics
	Events  *EventLog
	// ServiceXMPP is the bridges' own connection (xmpp.service), or nil
	// when they share the client connection.
	ServiceXMPP *XMPPClient

	started time.Time

	// Filled by the features' Setup (features.go), read-only once Run starts.
	presence []func(*Element) bool   // presence handlers tried after the bridges'
	loops    []func(context.Context) // background loops, run until the XMPP connections close
	leave    []func()                // run at a stop for good, after the conferences ended (brewery leaves)

	ho handoverCtl // whether and how the stop hands the conferences over (handover.go)

	ready chan struct{} // closed once the HTTP listener is up
}

// NewMain wires the parts together; nothing runs until Run.
func NewMain(cfg Config, logger *slog.Logger) *Main {
	m := &Main{Config: cfg, Log: logger, ready: make(chan struct{}), started: time.Now()}
	x := cfg.XMPP
	opts := XMPPOptions{ // the client connection: rooms, participants, components
		Addr:          net.JoinHostPort(x.Server, strconv.Itoa(x.Port)),
		Domain:        x.AuthDomain,
		Username:      x.Username,
		Password:      x.Password,
		Resource:      x.Resource,
		TLS:           x.TLS,
		TLSSkipVerify: x.TLSSkipVerify,
		ReplyTimeout:  x.ReplyTimeout.Duration,
		PingInterval:  x.PingInterval.Duration,
		PingTarget:    x.Domain,
		Trace:         cfg.Log.XMPP,
		Features:      []string{"https://jitsi.org/meet/jicofo/terminate-restart", nsFocus},
		Logger:        logger,
	}
	m.XMPP = NewXMPPClient(opts)
	m.Metrics = NewMetrics()
	m.Events = &EventLog{max: 200}
	bx := m.XMPP // the bridges' connection
	if s := x.Service; s.Enabled {
		// The bridges' own Prosody (xmpp.service): same account unless set.
		so := opts
		so.Addr, so.Domain, so.PingTarget = net.JoinHostPort(s.Server, strconv.Itoa(s.Port)), s.AuthDomain, s.AuthDomain
		so.Username, so.Password, so.TLS = orDefault(s.Username, x.Username), orDefault(s.Password, x.Password), orDefault(s.TLS, x.TLS)
		so.Features, so.Logger = nil, logger.With("connection", "service")
		m.ServiceXMPP = NewXMPPClient(so)
		bx = m.ServiceXMPP
	}
	m.Bridges = NewBridges(cfg.Bridges, x.Username, bx, logger)
	m.Metrics.registerState(m.Bridges, m.XMPP)
	m.Focus = NewFocus(cfg, m.XMPP, m.Bridges, m.Metrics, m.Events, logger)
	m.Focus.bx = bx
	if m.ServiceXMPP != nil {
		m.ServiceXMPP.HandlePresence(func(p *Element) { m.Bridges.HandlePresence(p) })
	}
	m.XMPP.HandlePresence(func(p *Element) {
		if m.Bridges.HandlePresence(p) {
			return
		}
		for _, h := range m.presence { // the features' breweries
			if h(p) {
				return
			}
		}
		m.Focus.HandlePresence(p)
	})
	m.HTTP = NewHTTPServer(m)
	for _, ft := range features() {
		if ft.Setup != nil {
			ft.Setup(m)
		}
	}
	return m
}

// Ready is closed when the HTTP listener is bound (HTTPAddr is valid).
func (m *Main) Ready() <-chan struct{} { return m.ready }

// Run starts everything and blocks until ctx ends, then shuts down in order:
// stop taking requests, end conferences, close the XMPP stream, stop HTTP.
func (m *Main) Run(ctx context.Context) error {
	if err := m.HTTP.Listen(); err != nil {
		return err
	}
	close(m.ready)
	for _, w := range m.Config.Warnings {
		m.Log.Warn(w)
	}
	m.Log.Info("minifocus starting", "version", version, "focus", m.Config.FocusJID(), "xmpp", net.JoinHostPort(m.Config.XMPP.Server, strconv.Itoa(m.Config.XMPP.Port)), "http", m.HTTP.Addr())
	go m.HTTP.Serve()

	m.restoreHandover() // before the first stanza is read
	xctx, xcancel := context.WithCancel(context.Background())
	xdone := make(chan struct{})
	go func() { m.XMPP.Run(xctx); close(xdone) }()
	sdone := make(chan struct{})
	if m.ServiceXMPP != nil {
		go func() { m.ServiceXMPP.Run(xctx); close(sdone) }()
	} else {
		close(sdone)
	}
	bdone := make(chan struct{})
	go func() { m.Bridges.Run(xctx); close(bdone) }()
	for _, loop := range m.loops {
		go loop(xctx)
	}

	<-ctx.Done()
	if m.ho.requested.Load() && m.handOver(xcancel, xdone, sdone, bdone) {
		return nil
	}
	m.Log.Info("shutting down")
	m.HTTP.SetShuttingDown()
	fctx, fcancel := context.WithTimeout(context.Background(), m.Config.Conference.ShutdownTimeout.Duration)
	m.Focus.Shutdown(fctx)
	fcancel()
	m.Bridges.Leave()
	for _, leave := range m.leave {
		leave()
	}
	xcancel()
	<-bdone
	select {
	case <-xdone:
	case <-time.After(5 * time.Second):
		m.Log.Warn("XMPP did not close in time")
	}
	select {
	case <-sdone:
	case <-time.After(2 * time.Second):
		m.Log.Warn("the bridges' XMPP connection did not close in time")
	}
	m.HTTP.Shutdown(3 * time.Second)
	m.Log.Info("stopped")
	return nil
}
