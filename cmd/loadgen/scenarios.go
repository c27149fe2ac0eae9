package main

// scenarios.go: join storm, one growing conference, churn.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"minifocus/testkit"
)

// runner holds what every scenario needs.
type runner struct {
	ctx        context.Context
	opt        options
	pool       *pool
	focus      *focusProc
	prosodyPID int
	rep        *report
	seq        int // keeps room names unique within a run
}

// cpuSnap is the CPU time of the focus, Prosody and the generator itself at
// one moment.
type cpuSnap struct {
	focus, prosody, self time.Duration
	at                   time.Time
}

func (r *runner) snap() cpuSnap {
	f, _ := cpuTime(r.focus.PID())
	p, _ := cpuTime(r.prosodyPID)
	s, _ := cpuTime(os.Getpid())
	return cpuSnap{focus: f, prosody: p, self: s, at: time.Now()}
}

// memory is the focus's RSS now and its live Go heap (allocated right after
// a forced-by-allocation GC; 0 if that failed).
func (r *runner) memory() (rss int64, live float64) {
	if m, err := readMem(r.focus.PID()); err == nil {
		rss = m.RSS
	}
	if m, err := r.focus.afterGC(r.ctx, 5000, 30*time.Second); err == nil {
		live = m["go_memstats_heap_alloc_bytes"]
	}
	return rss, live
}

// phase is the outcome of one measured stretch of load.
type phase struct {
	Name        string `json:"name"`
	Scenario    string `json:"scenario"` // storm, large, churn
	Conferences int    `json:"conferences"`
	// Size is the conference size the joins went into (at the end of the phase).
	Size         int     `json:"conference_size"`
	Joins        int     `json:"joins"`
	JoinFailures int     `json:"join_failures"`
	WallSeconds  float64 `json:"wall_seconds"`
	JoinsPerSec  float64 `json:"joins_per_second"`

	ReqToInitiateMS     latency `json:"request_to_session_initiate_ms"`
	AcceptToSourceAddMS latency `json:"accept_to_source_add_ms"`

	FocusCPUSeconds     float64 `json:"focus_cpu_seconds"`
	ProsodyCPUSeconds   float64 `json:"prosody_cpu_seconds"`
	FocusCPUPerJoinMS   float64 `json:"focus_cpu_per_join_ms"`
	ProsodyCPUPerJoinMS float64 `json:"prosody_cpu_per_join_ms"`
	FocusToProsody      float64 `json:"focus_to_prosody_cpu"`
	// The generator's own CPU (participants, bridges): it shares the cores.
	GeneratorCPUSeconds float64 `json:"generator_cpu_seconds"`

	FocusRSSBytes int64 `json:"focus_rss_bytes"`
	// Storms: memory the conferences (with their participants) added, per
	// conference: the live Go heap (allocated right after a GC) and the RSS,
	// before and at the end of the joins. The RSS delta understates when an
	// earlier scenario left freed pages that the storm reuses.
	LiveHeapPerConference float64 `json:"live_heap_per_conference_bytes,omitempty"`
	RSSPerConference      float64 `json:"rss_per_conference_bytes,omitempty"`

	// Leaving everyone at the end of the phase.
	LeaveFocusCPUPerLeaveMS   float64 `json:"leave_focus_cpu_per_leave_ms,omitempty"`
	LeaveProsodyCPUPerLeaveMS float64 `json:"leave_prosody_cpu_per_leave_ms,omitempty"`

	Converged  bool   `json:"converged"`
	Violations int    `json:"client_violations"`
	Note       string `json:"note,omitempty"`
}

func (ph *phase) setCPU(before, after cpuSnap, joins int) {
	fc, pc := after.focus-before.focus, after.prosody-before.prosody
	ph.FocusCPUSeconds, ph.ProsodyCPUSeconds = fc.Seconds(), pc.Seconds()
	ph.GeneratorCPUSeconds = (after.self - before.self).Seconds()
	if joins > 0 {
		ph.FocusCPUPerJoinMS = millis(fc) / float64(joins)
		ph.ProsodyCPUPerJoinMS = millis(pc) / float64(joins)
	}
	if pc > 0 {
		ph.FocusToProsody = fc.Seconds() / pc.Seconds()
	}
}

func (ph *phase) addNote(format string, args ...any) {
	if ph.Note != "" {
		ph.Note += "; "
	}
	ph.Note += fmt.Sprintf(format, args...)
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// convergeTimeout grows with the number of participants to settle.
func convergeTimeout(n int) time.Duration {
	return 30*time.Second + time.Duration(n)*200*time.Millisecond
}

func (r *runner) roomName(prefix string, i int) string {
	return fmt.Sprintf("%s-r%d-%d@%s", prefix, r.seq, i, testkit.MUCDomain)
}

// leaveAll makes everyone leave, waits until the focus has ended every
// conference and records the CPU per leave.
func (r *runner) leaveAll(ph *phase, ms []*member) {
	before := r.snap()
	r.pool.leaveMany(ms, r.opt.Concurrency)
	if err := r.focus.waitConferences(r.ctx, 0, 30*time.Second); err != nil {
		ph.addNote("after leaving: %v", err)
	}
	after := r.snap()
	if len(ms) > 0 {
		ph.LeaveFocusCPUPerLeaveMS = millis(after.focus-before.focus) / float64(len(ms))
		ph.LeaveProsodyCPUPerLeaveMS = millis(after.prosody-before.prosody) / float64(len(ms))
	}
}

// storm: confs conferences of size participants each, all joining at once
// (interleaved across the rooms, opt.concurrency joins in flight).
func (r *runner) storm(confs, size int) phase {
	r.seq++
	ph := phase{Name: fmt.Sprintf("storm %dx%d", confs, size), Scenario: "storm", Conferences: confs, Size: size}
	var rooms []string
	for range size {
		for c := range confs {
			rooms = append(rooms, r.roomName("storm", c))
		}
	}
	rss0, live0 := r.memory()
	before := r.snap()
	ms, fails := r.pool.joinMany(rooms, r.opt.Concurrency)
	err := waitConverged(r.ctx, ms, convergeTimeout(len(ms)))
	after := r.snap()
	rss1, live1 := r.memory()
	ph.RSSPerConference = float64(rss1-rss0) / float64(confs)
	if live0 > 0 && live1 > 0 {
		ph.LiveHeapPerConference = (live1 - live0) / float64(confs)
	}
	ph.finish(r, before, after, ms, ms, ms, fails, err)
	r.leaveAll(&ph, ms)
	return ph
}

// finish fills in the figures common to every scenario.
func (ph *phase) finish(r *runner, before, after cpuSnap, joined, receivers, firstOf []*member, fails int, convErr error) {
	ph.Joins, ph.JoinFailures = len(joined), fails
	ph.WallSeconds = after.at.Sub(before.at).Seconds()
	if ph.WallSeconds > 0 {
		ph.JoinsPerSec = float64(len(joined)) / ph.WallSeconds
	}
	ph.setCPU(before, after, len(joined))
	ph.Converged = convErr == nil
	if convErr != nil {
		ph.addNote("%v", convErr)
	}
	if fails > 0 {
		ph.addNote("%d joins failed (last: %v)", fails, r.pool.lastErr.Load())
	}
	if m, err := readMem(r.focus.PID()); err == nil {
		ph.FocusRSSBytes = m.RSS
	}
	markFirst(firstOf)
	reqs := reqToInitiate(joined)
	r.rep.allReq = append(r.rep.allReq, reqs...)
	ph.ReqToInitiateMS = summarize(reqs)
	ph.AcceptToSourceAddMS = summarize(acceptToSourceAdd(receivers, joined))
	ph.Violations, _ = violations(joined)
}

// largeResult is the growing conference: one phase per step plus the memory
// figures at its peak.
type largeResult struct {
	Total phase   `json:"total"`
	Steps []phase `json:"steps"`

	RSSBeforeBytes     int64   `json:"rss_before_bytes"`
	RSSPeakBytes       int64   `json:"rss_at_peak_bytes"`
	RSSPerParticipant  float64 `json:"rss_per_participant_bytes"`
	HeapBeforeBytes    float64 `json:"heap_inuse_before_bytes"`
	HeapPeakBytes      float64 `json:"heap_inuse_at_peak_bytes"`
	HeapPerParticipant float64 `json:"heap_inuse_per_participant_bytes"`
	// Right after a garbage collection at the peak: about what the
	// participants' state holds (the RSS delta includes the GC's headroom).
	HeapAllocBeforeBytes   float64 `json:"heap_alloc_before_bytes"`
	LiveHeapAtPeakBytes    float64 `json:"heap_alloc_after_gc_at_peak_bytes"`
	LiveHeapPerParticipant float64 `json:"heap_alloc_after_gc_per_participant_bytes"`
	ParticipantsAtPeak     int     `json:"participants_at_peak"`
	FocusGoroutinesAtEnd   float64 `json:"focus_goroutines_at_peak"`
}

// large grows one conference to n participants, step at a time with conc
// joins in flight, waiting for every participant to know everyone else's
// sources after each step.
func (r *runner) large(n, step, conc int) largeResult {
	r.seq++
	room := r.roomName("large", 0)
	var res largeResult
	if m, err := readMem(r.focus.PID()); err == nil {
		res.RSSBeforeBytes = m.RSS
	}
	if m, err := r.focus.afterGC(r.ctx, 5000, 30*time.Second); err == nil {
		res.HeapBeforeBytes = m["go_memstats_heap_inuse_bytes"]
		res.HeapAllocBeforeBytes = m["go_memstats_heap_alloc_bytes"]
	}
	total := phase{Name: fmt.Sprintf("large 1x%d", n), Scenario: "large", Conferences: 1}
	var all []*member
	var sum cpuSnap
	var fails int
	start := time.Now()
	for k := 0; k < n && r.ctx.Err() == nil; k += step {
		cnt := min(step, n-k)
		rooms := make([]string, cnt)
		for i := range rooms {
			rooms[i] = room
		}
		before := r.snap()
		ms, f := r.pool.joinMany(rooms, conc)
		all = append(all, ms...)
		err := waitConverged(r.ctx, all, convergeTimeout(len(all)))
		after := r.snap()
		fails += f
		sum.focus += after.focus - before.focus
		sum.prosody += after.prosody - before.prosody
		sum.self += after.self - before.self
		ph := phase{Name: fmt.Sprintf("large %d-%d", k+1, k+cnt), Scenario: "large", Conferences: 1, Size: len(all)}
		first := ms
		if k > 0 {
			first = nil // the room's first participant came in the first step
		}
		ph.finish(r, before, after, ms, all, first, f, err)
		res.Steps = append(res.Steps, ph)
		if err != nil {
			break
		}
	}
	res.ParticipantsAtPeak = len(all)
	if m, err := readMem(r.focus.PID()); err == nil {
		res.RSSPeakBytes = m.RSS
	}
	if m, err := r.focus.metrics(); err == nil {
		res.HeapPeakBytes = m["go_memstats_heap_inuse_bytes"]
		res.FocusGoroutinesAtEnd = m["go_goroutines"]
	}
	if len(all) > 0 {
		res.RSSPerParticipant = float64(res.RSSPeakBytes-res.RSSBeforeBytes) / float64(len(all))
		res.HeapPerParticipant = (res.HeapPeakBytes - res.HeapBeforeBytes) / float64(len(all))
		if m, err := r.focus.afterGC(r.ctx, 5000, 30*time.Second); err == nil {
			res.LiveHeapAtPeakBytes = m["go_memstats_heap_alloc_bytes"]
			res.LiveHeapPerParticipant = (res.LiveHeapAtPeakBytes - res.HeapAllocBeforeBytes) / float64(len(all))
		}
	}
	// Totals: the sum of the steps (the metric scrapes between steps are
	// left out).
	total.Size = len(all)
	total.Joins, total.JoinFailures = len(all), fails
	total.WallSeconds = time.Since(start).Seconds()
	if total.WallSeconds > 0 {
		total.JoinsPerSec = float64(len(all)) / total.WallSeconds
	}
	total.setCPU(cpuSnap{}, sum, len(all))
	total.Converged = len(res.Steps) > 0 && res.Steps[len(res.Steps)-1].Converged && len(all) == n
	for _, s := range res.Steps {
		if s.Note != "" {
			total.addNote("%s: %s", s.Name, s.Note)
		}
	}
	total.ReqToInitiateMS = summarize(reqToInitiate(all))
	total.AcceptToSourceAddMS = summarize(acceptToSourceAdd(all, all))
	total.Violations, _ = violations(all)
	total.FocusRSSBytes = res.RSSPeakBytes
	r.leaveAll(&total, all)
	res.Total = total
	return res
}

// churn fills confs conferences with size participants, then for d keeps
// replacing a random participant of each by a new one (a leave, a pause,
// a join), one worker per conference.
func (r *runner) churn(confs, size int, d, pause time.Duration) phase {
	r.seq++
	ph := phase{Name: fmt.Sprintf("churn %dx%d %v", confs, size, d), Scenario: "churn", Conferences: confs, Size: size}
	var rooms []string
	for range size {
		for c := range confs {
			rooms = append(rooms, r.roomName("churn", c))
		}
	}
	initial, fails := r.pool.joinMany(rooms, r.opt.Concurrency)
	if err := waitConverged(r.ctx, initial, convergeTimeout(len(initial))); err != nil {
		ph.addNote("initial fill: %v", err)
	}
	markFirst(initial)
	byRoom := map[string][]*member{}
	for _, m := range initial {
		byRoom[m.room] = append(byRoom[m.room], m)
	}

	maxIter := 10000
	if pause > 0 {
		maxIter = min(maxIter, int(d/pause)+1)
	}
	var (
		mu      sync.Mutex
		joined  []*member
		live    []*member
		churnFl int
		wg      sync.WaitGroup
	)
	before := r.snap()
	end := before.at.Add(d)
	for room, ms := range byRoom {
		wg.Add(1)
		go func(room string, ms []*member, seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 7))
			for i := 0; i < maxIter && time.Now().Before(end) && r.ctx.Err() == nil; i++ {
				if len(ms) > 2 {
					r.pool.leave(pick(&ms, rng))
				}
				if pause > 0 {
					select {
					case <-time.After(pause):
					case <-r.ctx.Done():
					}
				}
				m, err := r.pool.join(room)
				mu.Lock()
				if err != nil {
					churnFl++
				} else {
					joined = append(joined, m)
					ms = append(ms, m)
				}
				mu.Unlock()
			}
			mu.Lock()
			live = append(live, ms...)
			mu.Unlock()
		}(room, ms, uint64(len(room))+uint64(time.Now().UnixNano()))
	}
	wg.Wait()
	err := waitConverged(r.ctx, live, convergeTimeout(len(live)))
	after := r.snap()
	receivers := append(append([]*member(nil), initial...), joined...)
	ph.finish(r, before, after, joined, receivers, nil, churnFl, err)
	ph.addNote("each join paired with a leave; CPU/join covers both")
	if fails > 0 {
		ph.addNote("%d joins of the initial fill failed", fails)
	}
	r.leaveAll(&ph, live)
	return ph
}
