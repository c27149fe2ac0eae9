package main

import (
	"context"
)

// xmppLink is what the focus's conferences (and the feature code acting for
// them) need of an XMPP connection: sending, IQs and the focus's identity.
// *XMPPClient implements it; unit tests put a fake in its place (see
// conference_unit_test.go), so the conference's decisions can be tested
// without a server. Handler registration stays on the concrete client,
// which NewFocus and Main hold.
type xmppLink interface {
	// Send queues a stanza.
	Send(el *Element) error
	// SendIQ sends a get/set IQ and waits for its answer; an error answer
	// comes back together with a *StanzaError.
	SendIQ(ctx context.Context, iq *Element) (*Element, error)
	// StartIQ sends a get/set IQ now and returns the wait for its answer;
	// the wait must be called exactly once.
	StartIQ(iq *Element) func(ctx context.Context) (*Element, error)
	// JID is the bound full JID ("" while down).
	JID() string
	// Connected reports whether a session is up, and the last error otherwise.
	Connected() (bool, error)
	// capsVer is the verification string of the focus's own disco#info.
	capsVer() string
}

var _ xmppLink = (*XMPPClient)(nil)

// Senders the registry needs; *XMPPClient implements both, tests fake them.
type bridgeIQSender interface {
	SendIQ(ctx context.Context, iq *Element) (*Element, error)
}

type bridgeStanzaSender interface {
	Send(el *Element) error
}
