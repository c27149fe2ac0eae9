// Command loadgen measures minifocus under load and prints the figures next
// to the performance targets (docs/prosody-and-clients.md#performance-targets). It never
// asserts anything about timing: it reports.
//
// It starts a real Prosody (testkit.LaunchProsody), fake videobridges, and
// the minifocus binary built from this module as a child process, then
// drives simulated lib-jitsi-meet participants (testkit.JoinConference, one
// XMPP connection each) through three scenarios:
//
//	storm  C conferences × P participants joining at once (-storms 20x5,4x25)
//	large  one conference growing to N participants (-large 100)
//	churn  participants leaving and joining for a while (-churn-duration 30s)
//
// CPU comes from /proc/<pid>/task/*/schedstat of the minifocus child and
// of Prosody, memory from /proc/<pid>/status. Everything is stopped at the
// end, on error and on Ctrl-C (a second Ctrl-C kills at once; the children
// die with the generator).
//
//	go run ./cmd/loadgen
//	go run ./cmd/loadgen -scenarios storm -storms 100x5
//	go run ./cmd/loadgen -scenarios large -large 500 -max-participants 600
//	go run ./cmd/loadgen -json bench-results.json
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"minifocus/testkit"
)

func main() {
	var opt options
	flag.StringVar(&opt.Scenarios, "scenarios", "large,storm,churn", "scenarios to run, in this order (storm, large, churn); the large conference goes first by default so that its RSS delta starts from a fresh heap")
	flag.IntVar(&opt.Bridges, "bridges", 2, "fake videobridges")
	flag.DurationVar(&opt.PresenceIntervalS, "bridge-presence", time.Second, "fake bridges' stats presence interval")
	flag.StringVar(&opt.Storms, "storms", "20x5,4x25", "join storms, CONFERENCESxPARTICIPANTS, comma-separated (e.g. 100x5)")
	flag.StringVar(&opt.Large, "large", "100", "sizes of the growing conference, comma-separated (e.g. 100,200 or 500)")
	flag.IntVar(&opt.LargeStep, "large-step", 25, "participants per measured step of the growing conference")
	flag.IntVar(&opt.LargeConcurrency, "large-concurrency", 1, "joins in flight while the conference grows")
	flag.IntVar(&opt.ChurnConferences, "churn-conferences", 4, "conferences in the churn scenario")
	flag.IntVar(&opt.ChurnSize, "churn-size", 8, "participants per churn conference (at least 3)")
	flag.DurationVar(&opt.ChurnDuration, "churn-duration", 30*time.Second, "how long the churn lasts")
	flag.DurationVar(&opt.ChurnPause, "churn-pause", 100*time.Millisecond, "pause between a leave and the next join, per conference")
	flag.IntVar(&opt.Concurrency, "concurrency", 16, "joins (and leaves) in flight in storms and fills")
	flag.IntVar(&opt.MaxParticipants, "max-participants", 600, "most simulated participants connected at once")
	flag.IntVar(&opt.StartupRuns, "startup-runs", 3, "extra focus starts (info logging) to time start → logged in → ready")
	flag.DurationVar(&opt.Idle, "idle", 5*time.Second, "how long idle CPU is measured before the load")
	flag.DurationVar(&opt.Settle, "settle", 10*time.Second, "wait after everyone left before measuring idle memory again")
	flag.DurationVar(&opt.Timeout, "timeout", 20*time.Minute, "bound on the whole run")
	flag.DurationVar(&opt.JoinTimeout, "join-timeout", 60*time.Second, "bound on one participant's join")
	flag.StringVar(&opt.FocusBin, "focus-bin", "", "minifocus binary to test (default: go build this module)")
	flag.StringVar(&opt.FocusLogLevel, "focus-log-level", "warn", "log level of the focus under load")
	flag.StringVar(&opt.ProsodyLogLevel, "prosody-log-level", "info", "Prosody's log level")
	flag.BoolVar(&opt.ProsodyNoDelay, "prosody-nodelay", false, "set network_settings = { nagle = false } in Prosody (its default leaves Nagle's algorithm on)")
	flag.StringVar(&opt.FocusLog, "focus-log", "", "also write the load-run focus's log to this file (with -focus-log-level debug and -focus-xmpp-trace for every stanza)")
	flag.DurationVar(&opt.FocusPing, "focus-ping-interval", 0, "set [xmpp] ping-interval of the load-run focus (0: its default, 10s); it also paces the stream-management acks")
	flag.BoolVar(&opt.FocusXMPPTrace, "focus-xmpp-trace", false, "set [log] xmpp = true in the load-run focus (logs every stanza; costs CPU)")
	flag.StringVar(&opt.JSON, "json", "", "also write the report as JSON to this file (\"-\": stdout, after the table)")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("loadgen: ")
	if err := opt.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	os.Exit(run(opt))
}

type stormSpec struct{ confs, size int }

func parseStorms(s string) ([]stormSpec, error) {
	var out []stormSpec
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		c, p, ok := strings.Cut(f, "x")
		ci, err1 := strconv.Atoi(c)
		pi, err2 := strconv.Atoi(p)
		if !ok || err1 != nil || err2 != nil || ci < 1 || pi < 2 {
			return nil, fmt.Errorf("bad storm %q (want e.g. 20x5, at least 2 participants)", f)
		}
		out = append(out, stormSpec{ci, pi})
	}
	return out, nil
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 2 {
			return nil, fmt.Errorf("bad conference size %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func (o options) validate() error {
	for _, s := range strings.Split(o.Scenarios, ",") {
		switch strings.TrimSpace(s) {
		case "storm", "large", "churn", "":
		default:
			return fmt.Errorf("unknown scenario %q (storm, large, churn)", s)
		}
	}
	storms, err := parseStorms(o.Storms)
	if err != nil {
		return err
	}
	sizes, err := parseSizes(o.Large)
	if err != nil {
		return err
	}
	for _, s := range storms {
		if s.confs*s.size > o.MaxParticipants {
			return fmt.Errorf("storm %dx%d needs %d participants, over -max-participants %d", s.confs, s.size, s.confs*s.size, o.MaxParticipants)
		}
	}
	for _, n := range sizes {
		if n > o.MaxParticipants {
			return fmt.Errorf("large %d is over -max-participants %d", n, o.MaxParticipants)
		}
	}
	if o.ChurnSize < 3 || o.ChurnConferences < 1 || o.ChurnConferences*o.ChurnSize > o.MaxParticipants {
		return fmt.Errorf("churn needs -churn-size ≥ 3 and at most -max-participants in all")
	}
	if o.Bridges < 1 || o.LargeStep < 1 || o.Concurrency < 1 || o.LargeConcurrency < 1 {
		return fmt.Errorf("-bridges, -large-step, -concurrency and -large-concurrency must be positive")
	}
	if o.MaxParticipants > 5000 {
		return fmt.Errorf("-max-participants is capped at 5000")
	}
	return nil
}

// cleanups run last-registered first.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }
func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

func run(opt options) (code int) {
	start := time.Now()
	sigCtx, interrupted := context.WithCancel(context.Background())
	defer interrupted()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; !ok {
			return
		}
		log.Printf("interrupted: stopping (a second Ctrl-C kills at once)")
		signal.Reset(os.Interrupt, syscall.SIGTERM) // the next signal gets the default action
		interrupted()
	}()
	ctx, cancel := context.WithTimeout(sigCtx, opt.Timeout)
	defer cancel()

	rep := &report{Generated: start, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Bridges: opt.Bridges, FocusLog: opt.FocusLogLevel, Options: opt}
	var cl cleanups
	var (
		focus    *focusProc
		prosody  *testkit.Prosody
		pl       *pool
		nBridges int
	)
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		log.Print(msg)
		rep.Errors = append(rep.Errors, msg)
		code = 1
	}
	defer func() {
		// Stop everything, in order: participants, focus, bridges, Prosody.
		closed := 0
		if pl != nil {
			closed = pl.openCount()
		}
		if focus != nil && rep.FocusPeakRSS == 0 {
			if m, err := readMem(focus.PID()); err == nil {
				rep.FocusPeakRSS = m.HWM
			}
		}
		cl.run()
		rep.Cleanup = cleanupStatus(focus, prosody, closed, nBridges)
		rep.DurationS = time.Since(start).Seconds()
		if pl != nil {
			rep.RequestTimeFallback = pl.noHook.Load()
		}
		if focus != nil {
			rep.FocusWarnings, rep.FocusWarningSamples = focus.Warnings()
		}
		if sigCtx.Err() != nil {
			rep.Errors = append(rep.Errors, "interrupted; figures are partial")
			code = 130
		} else if ctx.Err() != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("-timeout %v reached; figures are partial", opt.Timeout))
			code = 1
		}
		rep.evaluate()
		rep.print(os.Stdout)
		if opt.JSON != "" {
			if err := rep.writeJSON(opt.JSON); err != nil {
				log.Printf("writing %s: %v", opt.JSON, err)
				code = 1
			}
		}
	}()

	tmp, err := os.MkdirTemp("", "minifocus-loadgen-")
	if err != nil {
		fail("%v", err)
		return
	}
	cl.add(func() { os.RemoveAll(tmp) })

	bin := opt.FocusBin
	if bin == "" {
		log.Printf("building minifocus")
		if bin, err = buildFocus(ctx, tmp); err != nil {
			fail("%v", err)
			return
		}
	}

	log.Printf("starting Prosody")
	popts := []testkit.Option{testkit.WithLogLevel(opt.ProsodyLogLevel)}
	if opt.ProsodyNoDelay {
		popts = append(popts, testkit.WithGlobalConfig("network_settings = { nagle = false }"))
	}
	prosody, err = testkit.LaunchProsody("", popts...)
	if err != nil {
		fail("%v", err)
		return
	}
	cl.add(func() {
		if err := prosody.Stop(); err != nil {
			log.Printf("stopping Prosody: %v", err)
		}
	})
	rep.ProsodyPID = prosody.PID()
	rep.Prosody = fmt.Sprintf("%s (pid %d)", procName(prosody.PID()), prosody.PID())

	for i := range opt.Bridges {
		nick := fmt.Sprintf("jvb%d", i+1)
		bctx, bcancel := context.WithTimeout(ctx, 30*time.Second)
		b, err := testkit.StartFakeBridge(bctx, testkit.FakeBridgeConfig{
			Addr: prosody.C2SAddr(), Nick: nick, RelayID: nick, PresenceInterval: opt.PresenceIntervalS,
		})
		bcancel()
		if err != nil {
			fail("starting bridge %s: %v", nick, err)
			return
		}
		nBridges++
		cl.add(b.Close)
	}

	if opt.StartupRuns > 0 {
		log.Printf("timing %d focus start-ups", opt.StartupRuns)
		runs, err := startupRuns(ctx, bin, tmp, prosody, opt.StartupRuns)
		rep.Startup = runs
		if err != nil {
			fail("start-up runs: %v", err)
			return
		}
	}

	port, err := freePort()
	if err != nil {
		fail("%v", err)
		return
	}
	cfgPath := filepath.Join(tmp, "minifocus.toml")
	if err := writeFocusConfig(cfgPath, prosody, port, opt.FocusLogLevel, opt.FocusXMPPTrace, opt.FocusPing); err != nil {
		fail("%v", err)
		return
	}
	focus, err = startFocus(bin, cfgPath, port, opt.FocusLog)
	if err != nil {
		fail("%v", err)
		return
	}
	rep.FocusPID = focus.PID()
	cl.add(func() {
		d, err := focus.stop(20 * time.Second)
		rep.FocusStopMS = millis(d)
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
	})
	up, err := focus.waitHealthy(ctx, 20*time.Second)
	if err != nil {
		fail("%v", err)
		return
	}
	rep.LoadFocusUpMS = millis(up)
	log.Printf("minifocus (pid %d) healthy after %v; Prosody pid %d", focus.PID(), up.Round(time.Millisecond), prosody.PID())

	r := &runner{ctx: ctx, opt: opt, focus: focus, prosodyPID: prosody.PID(), rep: rep}
	// Idle: let the start-up settle, then measure.
	if !sleepCtx(ctx, 2*time.Second) {
		return
	}
	if m, err := readMem(focus.PID()); err == nil {
		rep.IdleRSSAfterStart = m.RSS
	}
	before := r.snap()
	if !sleepCtx(ctx, opt.Idle) {
		return
	}
	after := r.snap()
	secs := after.at.Sub(before.at).Seconds()
	rep.IdleFocusCPUPerSecMS = millis(after.focus-before.focus) / secs
	rep.IdleProsodyCPUPerSecMS = millis(after.prosody-before.prosody) / secs

	pl = newPool(ctx, prosody.C2SAddr(), opt.MaxParticipants, opt.JoinTimeout)
	r.pool = pl
	cl.add(pl.closeAll)

	storms, _ := parseStorms(opt.Storms)
	sizes, _ := parseSizes(opt.Large)
	for _, sc := range strings.Split(opt.Scenarios, ",") {
		if ctx.Err() != nil {
			break
		}
		switch strings.TrimSpace(sc) {
		case "storm":
			for _, s := range storms {
				if ctx.Err() != nil {
					break
				}
				log.Printf("storm: %d conferences × %d participants", s.confs, s.size)
				ph := r.storm(s.confs, s.size)
				logPhase(ph)
				rep.Phases = append(rep.Phases, ph)
			}
		case "large":
			for _, n := range sizes {
				if ctx.Err() != nil {
					break
				}
				log.Printf("large: one conference growing to %d (steps of %d)", n, opt.LargeStep)
				res := r.large(n, opt.LargeStep, opt.LargeConcurrency)
				for _, s := range res.Steps {
					logPhase(s)
				}
				rep.Large = append(rep.Large, res)
				rep.Phases = append(rep.Phases, res.Total)
			}
		case "churn":
			log.Printf("churn: %d conferences × %d for %v", opt.ChurnConferences, opt.ChurnSize, opt.ChurnDuration)
			ph := r.churn(opt.ChurnConferences, opt.ChurnSize, opt.ChurnDuration, opt.ChurnPause)
			logPhase(ph)
			rep.Phases = append(rep.Phases, ph)
		}
	}
	if ctx.Err() != nil {
		return
	}

	// Everyone has left: idle memory again, after the focus has had a few
	// seconds to return what it freed.
	if err := focus.waitConferences(ctx, 0, 30*time.Second); err != nil {
		fail("%v", err)
	}
	sleepCtx(ctx, opt.Settle)
	if m, err := readMem(focus.PID()); err == nil {
		rep.IdleRSSAfterLeft, rep.FocusPeakRSS = m.RSS, m.HWM
	}
	if m, err := focus.metrics(); err == nil {
		rep.HeapAfterLeft, rep.GoroutinesAfterLeft = m["go_memstats_heap_inuse_bytes"], m["go_goroutines"]
	}
	// And once more after a garbage collection: is the memory retained or
	// just not collected yet?
	if m, err := focus.afterGC(ctx, 5000, 30*time.Second); err == nil {
		rep.HeapAfterLeftGC = m["go_memstats_heap_alloc_bytes"]
		sleepCtx(ctx, time.Second)
		if mem, err := readMem(focus.PID()); err == nil {
			rep.IdleRSSAfterLeftGC = mem.RSS
		}
	} else {
		log.Printf("after everyone left: %v", err)
	}
	return
}

func logPhase(p phase) {
	log.Printf("  %s: %d joins (%d failed) in %.1fs, req→initiate p50/p95/p99 %s ms, focus %.3f ms/join, Prosody %.3f ms/join%s",
		p.Name, p.Joins, p.JoinFailures, p.WallSeconds, p.ReqToInitiateMS, p.FocusCPUPerJoinMS, p.ProsodyCPUPerJoinMS,
		map[bool]string{true: "", false: " (not converged: " + p.Note + ")"}[p.Converged])
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// startupRuns starts and stops the focus n times with info logging (the
// level at which it logs "logged in" and the brewery join).
func startupRuns(ctx context.Context, bin, tmp string, p *testkit.Prosody, n int) ([]startupRun, error) {
	var runs []startupRun
	for i := range n {
		port, err := freePort()
		if err != nil {
			return runs, err
		}
		cfg := filepath.Join(tmp, fmt.Sprintf("startup-%d.toml", i))
		if err := writeFocusConfig(cfg, p, port, "info", false, 0); err != nil {
			return runs, err
		}
		f, err := startFocus(bin, cfg, port, "")
		if err != nil {
			return runs, err
		}
		ready, err := f.waitHealthy(ctx, 20*time.Second)
		if err != nil {
			f.stop(10 * time.Second)
			return runs, err
		}
		// The log lines precede health; give the reader a moment.
		var li, br time.Duration
		for range 100 {
			if li, br = f.startupTimes(); li > 0 && br > 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		stopped, err := f.stop(15 * time.Second)
		runs = append(runs, startupRun{LoggedInMS: millis(li), BreweryMS: millis(br), ReadyMS: millis(ready), StopMS: millis(stopped)})
		log.Printf("  start-up %d: logged in %v, brewery %v, healthy %v, SIGTERM→exit %v", i+1,
			li.Round(time.Millisecond), br.Round(time.Millisecond), ready.Round(time.Millisecond), stopped.Round(time.Millisecond))
		if err != nil {
			return runs, err
		}
		if !sleepCtx(ctx, 300*time.Millisecond) {
			return runs, ctx.Err()
		}
	}
	return runs, nil
}

// cleanupStatus checks that the processes this run started are gone.
func cleanupStatus(f *focusProc, p *testkit.Prosody, participants, bridges int) string {
	var left []string
	alive := func(pid int) bool {
		if pid <= 0 {
			return false
		}
		// A zombie still answers kill 0; check its state.
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) && s[i+2] == 'Z' {
			return false
		}
		return true
	}
	if f != nil && alive(f.PID()) {
		left = append(left, fmt.Sprintf("minifocus pid %d still running", f.PID()))
	}
	if p != nil && alive(p.PID()) {
		left = append(left, fmt.Sprintf("prosody pid %d still running", p.PID()))
	}
	if len(left) > 0 {
		return "LEFTOVERS: " + strings.Join(left, ", ")
	}
	done := []string{fmt.Sprintf("%d participants still connected were closed", participants)}
	if f != nil {
		done = append(done, "minifocus stopped")
	}
	done = append(done, fmt.Sprintf("%d bridges closed", bridges))
	if p != nil {
		done = append(done, "Prosody stopped")
	}
	return "ok (" + strings.Join(done, ", ") + ")"
}
