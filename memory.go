package main

// memory.go: core, off the two-person path: giving memory back to the
// system once the last conference has ended (small machines share it with
// Prosody and a bridge).

import (
	"runtime/debug"
	"time"
)

// idleReleaseAfter is how long the focus must have had no conference before
// it gives memory back to the system.
const idleReleaseAfter = 5 * time.Second

// releaseIfIdle returns the memory the last conferences used to the
// operating system once the focus has been idle for idleReleaseAfter. Go
// would do it too, but over minutes; on a Raspberry Pi shared with Prosody
// and a bridge the memory is better back at once. It costs one collection.
func (f *Focus) releaseIfIdle() {
	f.mu.Lock()
	idle := len(f.confs) == 0 && !f.idleSince.IsZero() && time.Since(f.idleSince) >= idleReleaseAfter
	f.mu.Unlock()
	if idle {
		debug.FreeOSMemory()
	}
}
