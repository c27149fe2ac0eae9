package main

// mailbox.go: core, off the two-person path: the conference's event queue
// behind post and postWait. It is a slice that grows only while there is a
// backlog (an idle conference holds no buffer), woken through a one-slot
// channel; the conference goroutine takes all waiting events at once.

// enqueue adds ev unless limit events are waiting already.
func (c *Conference) enqueue(ev event, limit int) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	c.mu.Lock()
	if len(c.queue) >= limit {
		c.mu.Unlock()
		c.f.log.Warn("conference event queue full; event dropped", "room", c.room, "kind", ev.kind)
		return false
	}
	c.queue = append(c.queue, ev)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

// next returns the waiting events (the goroutine handles them in order).
func (c *Conference) next() []event {
	<-c.wake
	c.mu.Lock()
	q := c.queue
	c.queue = nil
	c.mu.Unlock()
	return q
}
