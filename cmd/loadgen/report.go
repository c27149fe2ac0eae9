package main

// report.go: percentiles, the printed tables and the JSON document.

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"text/tabwriter"
	"time"
)

// latency summarises durations in milliseconds (nearest-rank percentiles).
type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func summarize(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return millis(s[max(0, min(i, len(s)-1))])
	}
	return latency{N: len(s), P50: rank(.50), P95: rank(.95), P99: rank(.99), Max: millis(s[len(s)-1])}
}

func (l latency) String() string {
	if l.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s / %s", fmtMS(l.P50), fmtMS(l.P95), fmtMS(l.P99))
}

func fmtMS(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func fmtBytes(b float64) string {
	switch {
	case math.Abs(b) >= 1<<20:
		return fmt.Sprintf("%.1f MB", b/(1<<20))
	case math.Abs(b) >= 1<<10:
		return fmt.Sprintf("%.1f KB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

// startupRun is one start of the focus with info logging.
type startupRun struct {
	LoggedInMS float64 `json:"start_to_logged_in_ms"`
	BreweryMS  float64 `json:"start_to_brewery_joined_ms"`
	ReadyMS    float64 `json:"start_to_healthy_ms"`
	StopMS     float64 `json:"sigterm_to_exit_ms"`
}

// target is one line of the target table.
type target struct {
	Figure string `json:"figure"`
	Value  string `json:"value"`
	Target string `json:"target"`
	Met    string `json:"met"` // yes, no, n/a
	Raw    any    `json:"raw,omitempty"`
}

type report struct {
	Generated  time.Time `json:"generated"`
	GoVersion  string    `json:"go_version"`
	CPUs       int       `json:"cpus"`
	Prosody    string    `json:"prosody_process"`
	Bridges    int       `json:"bridges"`
	FocusLog   string    `json:"focus_log_level"`
	Options    options   `json:"options"`
	DurationS  float64   `json:"run_seconds"`
	FocusPID   int       `json:"focus_pid"`
	ProsodyPID int       `json:"prosody_pid"`

	Startup       []startupRun `json:"startup_runs"`
	LoadFocusUpMS float64      `json:"load_focus_start_to_healthy_ms"`

	IdleRSSAfterStart      int64   `json:"idle_rss_after_start_bytes"`
	IdleRSSAfterLeft       int64   `json:"idle_rss_after_all_left_bytes"`
	HeapAfterLeft          float64 `json:"heap_inuse_after_all_left_bytes"`
	IdleRSSAfterLeftGC     int64   `json:"idle_rss_after_all_left_and_gc_bytes"`
	HeapAfterLeftGC        float64 `json:"heap_alloc_after_all_left_and_gc_bytes"`
	GoroutinesAfterLeft    float64 `json:"goroutines_after_all_left"`
	IdleFocusCPUPerSecMS   float64 `json:"idle_focus_cpu_ms_per_second"`
	IdleProsodyCPUPerSecMS float64 `json:"idle_prosody_cpu_ms_per_second"`
	FocusPeakRSS           int64   `json:"focus_peak_rss_bytes"`

	Phases []phase       `json:"phases"`
	Large  []largeResult `json:"large,omitempty"`

	Targets []target `json:"targets"`

	FocusWarnings       int      `json:"focus_warning_lines"`
	FocusWarningSamples []string `json:"focus_warning_samples,omitempty"`
	FocusStopMS         float64  `json:"focus_sigterm_to_exit_ms"`
	RequestTimeFallback int64    `json:"request_time_fallbacks"`
	Errors              []string `json:"errors,omitempty"`
	Cleanup             string   `json:"cleanup"`

	allReq []time.Duration // request → session-initiate of every measured join
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// joinPhases are the phases whose joins count for the overall figures: the
// storms, the steps of the large conferences and the churn.
func (rep *report) joinPhases() []phase {
	var out []phase
	for _, p := range rep.Phases {
		if p.Scenario != "large" {
			out = append(out, p)
		}
	}
	for _, l := range rep.Large {
		out = append(out, l.Steps...)
	}
	return out
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// evaluate fills in the target table.
func (rep *report) evaluate() {
	rep.Targets = nil
	add := func(t target) { rep.Targets = append(rep.Targets, t) }
	na := func(fig, tgt string) { add(target{Figure: fig, Value: "not measured", Target: tgt, Met: "n/a"}) }

	// Start-up.
	if len(rep.Startup) > 0 {
		var li, br, rd []float64
		for _, s := range rep.Startup {
			li, br, rd = append(li, s.LoggedInMS), append(br, s.BreweryMS), append(rd, s.ReadyMS)
		}
		add(target{Figure: fmt.Sprintf("start → \"logged in\" (median of %d)", len(li)), Value: fmtMS(median(li)) + " ms", Target: "-", Met: "-", Raw: li})
		add(target{Figure: "start → brewery joined (log line)", Value: fmtMS(median(br)) + " ms", Target: "-", Met: "-", Raw: br})
		m := median(rd)
		add(target{Figure: "start → ready (/about/health 200)", Value: fmt.Sprintf("%s ms (max %s)", fmtMS(m), fmtMS(slices.Max(rd))), Target: "< 500 ms", Met: yesNo(m < 500), Raw: rd})
	} else {
		na("start → ready (/about/health 200)", "< 500 ms")
	}

	// Memory.
	const mb20 = 20 << 20
	if rep.IdleRSSAfterStart > 0 {
		add(target{Figure: "idle RSS after start", Value: fmtBytes(float64(rep.IdleRSSAfterStart)), Target: "< 20 MB", Met: yesNo(rep.IdleRSSAfterStart < mb20), Raw: rep.IdleRSSAfterStart})
	} else {
		na("idle RSS after start", "< 20 MB")
	}
	if rep.IdleRSSAfterLeft > 0 {
		add(target{Figure: fmt.Sprintf("idle RSS after everyone left (+%v)", rep.Options.Settle), Value: fmtBytes(float64(rep.IdleRSSAfterLeft)), Target: "< 20 MB", Met: yesNo(rep.IdleRSSAfterLeft < mb20), Raw: rep.IdleRSSAfterLeft})
	}
	if rep.IdleRSSAfterLeftGC > 0 {
		add(target{Figure: "idle RSS after everyone left, after a GC", Value: fmtBytes(float64(rep.IdleRSSAfterLeftGC)), Target: "< 20 MB", Met: yesNo(rep.IdleRSSAfterLeftGC < mb20), Raw: rep.IdleRSSAfterLeftGC})
	}
	if rep.FocusPeakRSS > 0 {
		add(target{Figure: "peak RSS (VmHWM)", Value: fmtBytes(float64(rep.FocusPeakRSS)), Target: "-", Met: "-", Raw: rep.FocusPeakRSS})
	}
	for _, l := range rep.Large {
		n := l.ParticipantsAtPeak
		add(target{Figure: fmt.Sprintf("RSS per participant (1x%d, delta at peak)", n), Value: fmtBytes(l.RSSPerParticipant), Target: "< 16 KB", Met: yesNo(l.RSSPerParticipant < 16<<10), Raw: l.RSSPerParticipant})
		add(target{Figure: fmt.Sprintf("Go heap in use per participant (1x%d)", n), Value: fmtBytes(l.HeapPerParticipant), Target: "-", Met: "-", Raw: l.HeapPerParticipant})
		if l.LiveHeapAtPeakBytes > 0 {
			add(target{Figure: fmt.Sprintf("live Go heap per participant (1x%d, after a GC)", n), Value: fmtBytes(l.LiveHeapPerParticipant), Target: "-", Met: "-", Raw: l.LiveHeapPerParticipant})
		}
	}
	if len(rep.Large) == 0 {
		na("RSS per participant", "< 16 KB")
	}
	for _, p := range rep.Phases {
		if p.Scenario == "storm" && p.LiveHeapPerConference != 0 {
			limit := float64(32<<10 + p.Size*16<<10)
			t := target{Figure: fmt.Sprintf("live heap per conference of %d, with its participants (%s)", p.Size, p.Name),
				Value:  fmt.Sprintf("%s (RSS delta %s)", fmtBytes(p.LiveHeapPerConference), fmtBytes(p.RSSPerConference)),
				Target: "< " + fmtBytes(limit) + " (32 KB + 16 KB each)", Met: yesNo(p.LiveHeapPerConference < limit), Raw: p.LiveHeapPerConference}
			if p.LiveHeapPerConference <= 0 {
				// The baseline held memory that the storm let go (e.g. sent
				// stanzas kept for stream management until acknowledged).
				t.Met = "n/a (baseline fell)"
			}
			add(t)
		}
	}

	// CPU.
	jp := rep.joinPhases()
	var worst *phase
	var fSum, pSum float64
	for i := range jp {
		p := &jp[i]
		fSum += p.FocusCPUSeconds
		pSum += p.ProsodyCPUSeconds
		if p.Size <= 100 && p.Joins > 0 && (worst == nil || p.FocusCPUPerJoinMS > worst.FocusCPUPerJoinMS) {
			worst = p
		}
	}
	if worst != nil {
		add(target{Figure: "focus CPU per join, conferences ≤ 100 (worst phase)", Value: fmt.Sprintf("%.2f ms (%s)", worst.FocusCPUPerJoinMS, worst.Name), Target: "< 2 ms", Met: yesNo(worst.FocusCPUPerJoinMS < 2), Raw: worst.FocusCPUPerJoinMS})
	} else {
		na("focus CPU per join, conferences ≤ 100", "< 2 ms")
	}
	for _, p := range jp {
		if p.Size > 100 && p.Joins > 0 {
			add(target{Figure: fmt.Sprintf("focus CPU per join, %s (size %d)", p.Name, p.Size), Value: fmt.Sprintf("%.2f ms", p.FocusCPUPerJoinMS), Target: "-", Met: "-", Raw: p.FocusCPUPerJoinMS})
		}
	}
	if pSum > 0 {
		r := fSum / pSum
		add(target{Figure: "focus CPU / Prosody CPU (all join phases)", Value: fmt.Sprintf("%.1f %% (%.2f s / %.2f s)", 100*r, fSum, pSum), Target: "≤ 10 %", Met: yesNo(r <= 0.10), Raw: r})
	} else {
		na("focus CPU / Prosody CPU", "≤ 10 %")
	}
	if l := summarize(rep.allReq); l.N > 0 {
		add(target{Figure: fmt.Sprintf("conference request → session-initiate p99 (n=%d)", l.N), Value: fmt.Sprintf("%s ms (p50 %s, max %s)", fmtMS(l.P99), fmtMS(l.P50), fmtMS(l.Max)), Target: "< 50 ms", Met: yesNo(l.P99 < 50), Raw: l})
	} else {
		na("conference request → session-initiate p99", "< 50 ms")
	}
}

// print writes the human-readable tables.
func (rep *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nminifocus load report — %s, %s, %d CPUs, %d fake bridges, focus log level %s, %.0f s\n",
		rep.Generated.Format(time.RFC3339), rep.GoVersion, rep.CPUs, rep.Bridges, rep.FocusLog, rep.DurationS)
	fmt.Fprintln(w, "CPU from /proc/<pid>/task/*/schedstat (nanoseconds on CPU, all threads) of the minifocus child and of Prosody; memory from /proc/<pid>/status.")

	fmt.Fprintln(w, "\nTargets (docs/prosody-and-clients.md#performance-targets)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tVALUE\tTARGET\tMET")
	for _, t := range rep.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Figure, t.Value, t.Target, t.Met)
	}
	tw.Flush()

	if len(rep.Phases) > 0 {
		fmt.Fprintln(w, "\nScenarios (latencies in ms, p50 / p95 / p99)")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "SCENARIO\tJOINS\tFAIL\tWALL s\tJOINS/s\tREQ→INITIATE\tACCEPT→SOURCE-ADD\tFOCUS CPU/JOIN ms\tPROSODY CPU/JOIN ms\tFOCUS/PROSODY\tGENERATOR CPU s\tLEAVE FOCUS/PROSODY ms\tOK\t")
		for _, p := range rep.Phases {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%s\t%s\t%.3f\t%.3f\t%.1f %%\t%.2f\t%.3f / %.3f\t%s\t\n",
				p.Name, p.Joins, p.JoinFailures, p.WallSeconds, p.JoinsPerSec, p.ReqToInitiateMS, p.AcceptToSourceAddMS,
				p.FocusCPUPerJoinMS, p.ProsodyCPUPerJoinMS, 100*p.FocusToProsody, p.GeneratorCPUSeconds, p.LeaveFocusCPUPerLeaveMS, p.LeaveProsodyCPUPerLeaveMS, okMark(p))
		}
		tw.Flush()
	}

	if jp := rep.joinPhases(); len(jp) > 0 {
		fmt.Fprintln(w, "\nFocus CPU per join by conference size (size = members after the joins)")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "PHASE\tSIZE\tJOINS\tFOCUS CPU/JOIN ms\tPROSODY CPU/JOIN ms\tFOCUS/PROSODY\tREQ→INITIATE p50/p95/p99\tACCEPT→SOURCE-ADD p50/p95/p99\tFOCUS RSS\t")
		for _, p := range jp {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.3f\t%.3f\t%.1f %%\t%s\t%s\t%s\t\n", p.Name, p.Size, p.Joins, p.FocusCPUPerJoinMS, p.ProsodyCPUPerJoinMS,
				100*p.FocusToProsody, p.ReqToInitiateMS, p.AcceptToSourceAddMS, fmtBytes(float64(p.FocusRSSBytes)))
		}
		tw.Flush()
	}

	fmt.Fprintln(w, "\nOther figures")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if rep.IdleRSSAfterStart > 0 {
		fmt.Fprintf(tw, "idle CPU, focus / Prosody\t%.2f / %.2f ms per second\n", rep.IdleFocusCPUPerSecMS, rep.IdleProsodyCPUPerSecMS)
	}
	if rep.HeapAfterLeft > 0 {
		fmt.Fprintf(tw, "after everyone left (+%v): Go heap in use, goroutines\t%s, %.0f\n", rep.Options.Settle, fmtBytes(rep.HeapAfterLeft), rep.GoroutinesAfterLeft)
	}
	if rep.HeapAfterLeftGC > 0 {
		fmt.Fprintf(tw, "after everyone left and a GC: Go heap allocated, RSS\t%s, %s\n", fmtBytes(rep.HeapAfterLeftGC), fmtBytes(float64(rep.IdleRSSAfterLeftGC)))
	}
	if rep.LoadFocusUpMS > 0 {
		fmt.Fprintf(tw, "start → ready of the load-run focus (warn logging)\t%s ms\n", fmtMS(rep.LoadFocusUpMS))
	}
	for _, l := range rep.Large {
		fmt.Fprintf(tw, "large 1x%d: RSS before / at peak\t%s / %s\n", l.ParticipantsAtPeak, fmtBytes(float64(l.RSSBeforeBytes)), fmtBytes(float64(l.RSSPeakBytes)))
		fmt.Fprintf(tw, "large 1x%d: Go heap in use before / at peak\t%s / %s (%.0f goroutines)\n", l.ParticipantsAtPeak, fmtBytes(l.HeapBeforeBytes), fmtBytes(l.HeapPeakBytes), l.FocusGoroutinesAtEnd)
		fmt.Fprintf(tw, "large 1x%d: Go heap allocated after a GC, before / at peak\t%s / %s\n", l.ParticipantsAtPeak, fmtBytes(l.HeapAllocBeforeBytes), fmtBytes(l.LiveHeapAtPeakBytes))
	}
	if rep.FocusStopMS > 0 {
		fmt.Fprintf(tw, "SIGTERM → exit of the load-run focus\t%s ms\n", fmtMS(rep.FocusStopMS))
	}
	fmt.Fprintf(tw, "focus WARN/ERROR log lines\t%d\n", rep.FocusWarnings)
	if rep.RequestTimeFallback > 0 {
		fmt.Fprintf(tw, "joins timed from the login, not the request\t%d (stanza hook did not fire)\n", rep.RequestTimeFallback)
	}
	fmt.Fprintf(tw, "clean-up\t%s\n", rep.Cleanup)
	tw.Flush()
	for _, s := range rep.FocusWarningSamples {
		fmt.Fprintf(w, "  focus: %s\n", s)
	}
	notes := false
	for _, p := range rep.Phases {
		if p.Note != "" {
			if !notes {
				fmt.Fprintln(w, "\nNotes")
				notes = true
			}
			fmt.Fprintf(w, "  %s: %s\n", p.Name, p.Note)
		}
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "ERROR: %s\n", e)
	}
}

func okMark(p phase) string {
	if !p.Converged {
		return "no"
	}
	if p.Violations > 0 {
		return fmt.Sprintf("%d viol.", p.Violations)
	}
	return "yes"
}

// writeJSON writes the report to path ("-": stdout).
func (rep *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// options are the command-line settings (also recorded in the JSON).
type options struct {
	Scenarios         string        `json:"scenarios"`
	Bridges           int           `json:"bridges"`
	Storms            string        `json:"storms"`
	Large             string        `json:"large"`
	LargeStep         int           `json:"large_step"`
	LargeConcurrency  int           `json:"large_concurrency"`
	ChurnConferences  int           `json:"churn_conferences"`
	ChurnSize         int           `json:"churn_size"`
	ChurnDuration     time.Duration `json:"churn_duration_ns"`
	ChurnPause        time.Duration `json:"churn_pause_ns"`
	Concurrency       int           `json:"concurrency"`
	MaxParticipants   int           `json:"max_participants"`
	StartupRuns       int           `json:"startup_runs"`
	Idle              time.Duration `json:"idle_ns"`
	Timeout           time.Duration `json:"timeout_ns"`
	JoinTimeout       time.Duration `json:"join_timeout_ns"`
	FocusBin          string        `json:"focus_bin,omitempty"`
	FocusLogLevel     string        `json:"focus_log_level"`
	ProsodyLogLevel   string        `json:"prosody_log_level"`
	ProsodyNoDelay    bool          `json:"prosody_nodelay"`
	FocusLog          string        `json:"-"`
	FocusXMPPTrace    bool          `json:"focus_xmpp_trace"`
	FocusPing         time.Duration `json:"focus_ping_interval_ns,omitempty"`
	JSON              string        `json:"-"`
	PresenceIntervalS time.Duration `json:"bridge_presence_interval_ns"`
	Settle            time.Duration `json:"settle_ns"`
}
