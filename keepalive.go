package main

// keepalive.go: telling a dead XMPP server from a busy one.
//
// Anything read from the server proves it alive, so a ping is sent only
// after a ping interval of silence, and the connection is declared dead only
// when nothing at all has been read for keepaliveMisses ping intervals (and
// at least the reply timeout) after that ping was actually written. The
// clock starts at the write, not when the ping was queued: while the focus
// is busy writing a burst of stanzas, its ping waits in the queue, and that
// wait says nothing about the server. A connection whose writes are stuck
// is caught by the writer's own timeout instead.

import (
	"fmt"
	"sync"
	"time"
)

// keepaliveMisses is how many silent ping intervals after a written ping
// mean the server is gone.
const keepaliveMisses = 3

// keepalive is one connection's liveness record.
type keepalive struct {
	mu        sync.Mutex
	lastRead  time.Time // last byte from the server
	pingSent  bool      // a ping is queued or written, not yet followed by traffic
	pingWrote time.Time // when it was written (zero while queued)
}

func (k *keepalive) heard(now time.Time) {
	k.mu.Lock()
	k.lastRead = now
	k.mu.Unlock()
}

func (k *keepalive) wrote(at time.Time) {
	k.mu.Lock()
	k.pingWrote = at
	k.mu.Unlock()
}

// check decides, at a ping tick, whether to ping now and whether the server
// is to be considered gone.
func (k *keepalive) check(now time.Time, interval, deadAfter time.Duration) (ping bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pingSent {
		switch {
		case !k.pingWrote.IsZero() && k.lastRead.After(k.pingWrote):
			k.pingSent = false // heard from since: alive
		case !k.pingWrote.IsZero() && now.Sub(k.pingWrote) >= deadAfter:
			return false, fmt.Errorf("nothing received for %s after a ping", now.Sub(k.pingWrote).Round(time.Millisecond))
		default:
			return false, nil // still waiting (or still queued behind a burst)
		}
	}
	if now.Sub(k.lastRead) < interval {
		return false, nil // traffic flows: no ping needed
	}
	k.pingSent, k.pingWrote = true, time.Time{}
	return true, nil
}

// keepalive runs at each ping tick on the connection's serve loop.
func (c *XMPPClient) keepalive(conn *xmppConn, now time.Time) error {
	deadAfter := keepaliveMisses * c.opt.PingInterval
	if deadAfter < c.opt.ReplyTimeout {
		deadAfter = c.opt.ReplyTimeout
	}
	ping, err := conn.alive.check(now, c.opt.PingInterval, deadAfter)
	if err != nil {
		return fmt.Errorf("keepalive: %w", err)
	}
	if c.sm.isEnabled() {
		// Every tick, busy or not: the server's acknowledgement keeps the
		// resend queue short (and its answer is traffic too).
		go func() { _ = c.enqueue(conn, outItem{b: []byte(`<r xmlns="` + nsSM + `"/>`)}) }()
	}
	if !ping {
		return nil
	}
	// The answer needs no waiter: any traffic counts, and an answer nobody
	// waits for is dropped.
	iq := NewIQ("get", c.opt.PingTarget, "ka-"+randomID(), NewElement(nsPing, "ping"))
	go func() { _ = c.enqueue(conn, outItem{b: iq.Bytes(), stanza: true, written: conn.alive.wrote}) }()
	return nil
}
