package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ptFocus is a tiny stand-in focus: logged in as focus@auth.meet.test/focus,
// it creates rooms on demand (join as room/focus, whois=anyone), answers the
// conference IQ with ready="true", acks every Jingle IQ and lets the test
// send hand-built offers.
type ptFocus struct {
	*ptRec
	c *Client

	rooms map[string]bool
	early map[string]bool // a participant joined before ready was answered
	// focusJID answers per room (default focus@auth.meet.test).
	focusJID map[string]string
}

func ptStartFocus(t *testing.T, p *Prosody) *ptFocus {
	f := &ptFocus{ptRec: ptNewRec(t), rooms: map[string]bool{}, early: map[string]bool{}, focusJID: map[string]string{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, DialConfig{Addr: p.C2SAddr(), Domain: AuthDomain, User: FocusUser, Password: FocusPassword, Resource: "focus", Handler: f.handle})
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	t.Cleanup(func() { c.Close() })
	return f
}

func (f *ptFocus) handle(st *Elem) {
	f.record(st)
	if st.Local != "iq" || st.Attr("type") != "set" {
		return
	}
	if conf := st.Child(pnsFocus, "conference"); conf != nil {
		go f.answerConference(st, conf.Attr("room"))
		return
	}
	if st.Child(pnsJingle, "jingle") != nil || st.Child(pnsMute+"audio", "mute") != nil {
		f.c.Send(ptResult(st))
	}
}

func (f *ptFocus) answerConference(iq *Elem, room string) {
	if err := f.createRoom(room); err != nil {
		f.c.Send(ptError(iq, "cancel", "internal-server-error"))
		return
	}
	// Give a too-eager client time to show itself before answering.
	time.Sleep(300 * time.Millisecond)
	f.mu.Lock()
	for _, st := range f.got {
		bare, nick, _ := strings.Cut(st.Attr("from"), "/")
		if st.Local == "presence" && bare == room && nick != "focus" && st.Attr("type") == "" {
			f.early[room] = true
		}
	}
	fj := f.focusJID[room]
	f.mu.Unlock()
	if fj == "" {
		fj = FocusUser + "@" + AuthDomain
	}
	f.c.Send(ptResult(iq).Add(NewElem(pnsFocus, "conference", "room", room, "ready", "true", "focusjid", fj)))
}

// createRoom joins room/focus (creating the room) and makes it non-anonymous.
func (f *ptFocus) createRoom(room string) error {
	f.mu.Lock()
	done := f.rooms[room]
	f.rooms[room] = true
	f.mu.Unlock()
	if done {
		return nil
	}
	mark := f.mark()
	f.c.Send(NewElem("", "presence", "to", room+"/focus").Add(NewElem(pnsMUC, "x")))
	if f.waitErr(mark, 5*time.Second, func(e *Elem) bool {
		return e.Local == "presence" && e.Attr("from") == room+"/focus" && ptHasStatus(e.Child(pnsMUCUser, "x"), "110")
	}) == nil {
		return fmt.Errorf("focus could not join %s", room)
	}
	form := NewElem("jabber:x:data", "x", "type", "submit").Add(
		NewElem("", "field", "var", "FORM_TYPE").Add(NewElem("", "value").SetText("http://jabber.org/protocol/muc#roomconfig")),
		NewElem("", "field", "var", "muc#roomconfig_whois").Add(NewElem("", "value").SetText("anyone")))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := f.c.SendIQ(ctx, NewElem("", "iq", "type", "set", "to", room).Add(NewElem("http://jabber.org/protocol/muc#owner", "query").Add(form)))
	return err
}

// ptRec records the stanzas a test client receives.
type ptRec struct {
	t    *testing.T
	mu   sync.Mutex
	got  []*Elem
	wake chan struct{}
}

func ptNewRec(t *testing.T) *ptRec { return &ptRec{t: t, wake: make(chan struct{}, 1)} }

func (r *ptRec) record(st *Elem) {
	r.mu.Lock()
	r.got = append(r.got, st)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *ptRec) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *ptRec) waitErr(from int, d time.Duration, ok func(*Elem) bool) *Elem {
	deadline := time.After(d)
	for {
		r.mu.Lock()
		for _, e := range r.got[from:] {
			if ok(e) {
				r.mu.Unlock()
				return e
			}
		}
		r.mu.Unlock()
		select {
		case <-r.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			return nil
		}
	}
}

func (r *ptRec) wait(from int, what string, ok func(*Elem) bool) *Elem {
	r.t.Helper()
	e := r.waitErr(from, 10*time.Second, ok)
	if e == nil {
		r.t.Fatalf("timed out waiting for %s", what)
	}
	return e
}

func (r *ptRec) jingleFrom(from int, who, action string) *Elem {
	r.t.Helper()
	return r.wait(from, action+" from "+who, func(e *Elem) bool {
		j := e.Child(pnsJingle, "jingle")
		return e.Local == "iq" && e.Attr("from") == who && j != nil && j.Attr("action") == action
	})
}

func (f *ptFocus) iq(to string, payload *Elem) (*Elem, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f.c.SendIQ(ctx, NewElem("", "iq", "type", "set", "to", to).Add(payload))
}

const ptTestSources = `{"sources":{"abcd1234":[[{"s":1001,"n":"abcd1234-v0","m":"s1 t1"},{"s":1002,"n":"abcd1234-v0","m":"s1 t1"}],[["f",1001,1002]],[{"s":1003,"n":"abcd1234-a0","m":"s1 t2"}]],` +
	`"jvb":[[{"s":9,"n":"jvb-v0","m":"mixedmslabel mixedlabelvideo0"}],[],[{"s":8,"n":"jvb-a0","m":"mixedmslabel mixedlabelaudio0"}]]}}`

// ptOffer is a session-initiate shaped like Jicofo's.
func ptOffer(sid string, fingerprint bool, sources string) *Elem {
	fp := ""
	if fingerprint {
		fp = `<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' required='false' setup='actpass' cryptex='false'>` + ptFingerprint() + `</fingerprint>`
	}
	tr := func(extra string) string {
		return `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='bU1f' pwd='bridgepassword0123456789'><rtcp-mux/>` + fp + extra +
			`<candidate component='1' foundation='1' generation='0' id='c1' ip='127.0.0.1' network='0' port='10000' priority='2130706431' protocol='udp' type='host'/></transport>`
	}
	fb := `<rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='ccm' subtype='fir'/><rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack'/>` +
		`<rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack' subtype='pli'/><rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='transport-cc'/>`
	x := `<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='focus@auth.meet.test/focus' sid='` + sid + `'>` +
		`<content creator='initiator' name='audio' senders='both'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio' maxptime='60'>` +
		`<payload-type id='111' name='opus' clockrate='48000' channels='2'><parameter name='minptime' value='10'/><parameter name='useinbandfec' value='1'/>` +
		`<rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='transport-cc'/></payload-type><payload-type id='126' name='telephone-event' clockrate='8000'/>` +
		`<rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='1' uri='urn:ietf:params:rtp-hdrext:ssrc-audio-level'/>` +
		`<rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='5' uri='http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01'/>` +
		`<extmap-allow-mixed xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0'/><rtcp-mux/></description>` + tr("") + `</content>` +
		`<content creator='initiator' name='video' senders='both'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>` +
		`<payload-type id='100' name='VP8' clockrate='90000'>` + fb + `</payload-type>` +
		`<payload-type id='96' name='rtx' clockrate='90000'><parameter name='apt' value='100'/>` + fb + `</payload-type>` +
		`<payload-type id='120' name='NOPE' clockrate='90000'/>` +
		`<rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='10' uri='urn:ietf:params:rtp-hdrext:sdes:mid'/>` +
		`<rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='9' uri='http://tools.ietf.org/html/draft-ietf-avtext-framemarking-07'/>` +
		`<rtcp-mux/></description>` + tr("") + `</content>` +
		`<content creator='initiator' name='data' senders='both'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='application'><rtcp-mux/></description>` +
		tr(`<sctpmap xmlns='urn:xmpp:jingle:transports:dtls-sctp:1' number='5000' protocol='webrtc-datachannel' streams='1024'/>`) + `</content>` +
		`<group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'><content name='audio'/><content name='video'/><content name='data'/></group>` +
		`<bridge-session xmlns='http://jitsi.org/protocol/focus' id='bs-` + sid + `' region='r1'/>` +
		`<json-message xmlns='http://jitsi.org/jitmeet'>` + sources + `</json-message></jingle>`
	e, err := ParseElem(x)
	if err != nil {
		panic(err)
	}
	return e
}

func ptJoin(t *testing.T, ctx context.Context, cfg ParticipantConfig) *Participant {
	t.Helper()
	pa, err := JoinConference(ctx, cfg)
	if err != nil {
		t.Fatalf("JoinConference: %v", err)
	}
	t.Cleanup(func() { pa.Close() })
	return pa
}

func ptChildText(e *Elem, local string) string {
	if c := e.Child("", local); c != nil {
		return c.Text
	}
	return "<missing>"
}

func TestParticipant(t *testing.T) {
	p := StartProsody(t)
	f := ptStartFocus(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	room := "room1@" + MUCDomain

	// --- join: conference IQ first, presence only after ready ---
	mark := f.mark()
	cfg := ParticipantConfig{Addr: p.C2SAddr(), StatsID: "p1", DisplayName: "p1", Trickle: true}
	if os.Getenv("TESTKIT_WIRE") != "" {
		cfg.Logf = t.Logf // the participant's whole conversation
	}
	a := ptJoin(t, ctx, cfg)
	if f.early[room] {
		t.Error("participant joined the room before the focus answered ready")
	}
	req := f.wait(mark, "conference IQ", func(e *Elem) bool { return e.Child(pnsFocus, "conference") != nil })
	conf := req.Child(pnsFocus, "conference")
	if conf.Attr("room") != room || len(conf.Attr("machine-uid")) != 32 || req.Attr("from") != a.JID() {
		t.Errorf("conference IQ %s", req)
	}
	var props []string
	for _, pr := range conf.All("", "property") {
		props = append(props, pr.Attr("name")+"="+pr.Attr("value"))
	}
	if !slices.Equal(props, []string{"rtcstatsEnabled=false", "visitors-version=1"}) {
		t.Errorf("conference properties %v", props)
	}
	pres := f.wait(mark, "join presence", func(e *Elem) bool { return e.Local == "presence" && e.Attr("from") == a.OccupantJID() })
	c := pres.Child(pnsCaps, "c")
	if c.Attr("ver") != "dtzK/3xhISaXUMVg59IpXxdvKyQ=" || c.Attr("node") != ClientCapsNode || c.Attr("hash") != "sha-1" {
		t.Errorf("caps %s, want the captured client's ver", c)
	}
	if ptChildText(pres, "stats-id") != "p1" || ptChildText(pres, "SourceInfo") != "{}" ||
		ptChildText(pres, "jitsi_participant_codecList") != "av1,vp9,vp8,h264" || pres.Child(pnsNick, "nick").Text != "p1" {
		t.Errorf("join presence %s", pres)
	}
	if len(a.Nick()) != 8 || a.FocusOccupant() != room+"/focus" || a.Role() != "participant" || a.FocusPresence() == nil {
		t.Errorf("nick %q focus %q role %q", a.Nick(), a.FocusOccupant(), a.Role())
	}

	// --- disco#info to the occupant JID, with the caps node ---
	resp, err := f.c.SendIQ(ctx, NewElem("", "iq", "type", "get", "to", a.OccupantJID()).
		Add(NewElem(pnsDiscoInfo, "query", "node", ClientCapsNode+"#"+c.Attr("ver"))))
	if err != nil {
		t.Fatal(err)
	}
	var feats []string
	for _, fe := range resp.Child(pnsDiscoInfo, "query").All("", "feature") {
		feats = append(feats, fe.Attr("var"))
	}
	if !slices.Equal(feats, ClientFeatures()) || ClientCapsVer(feats) != c.Attr("ver") ||
		resp.Child(pnsDiscoInfo, "query").Attr("node") != ClientCapsNode+"#"+c.Attr("ver") {
		t.Errorf("disco answer %s", resp)
	}

	// --- offer → result, session-accept with sources, transport-info, SourceInfo ---
	mark = f.mark()
	if _, err := f.iq(a.OccupantJID(), ptOffer("s1", true, ptTestSources)); err != nil {
		t.Fatalf("offer: %v", err)
	}
	acc := f.jingleFrom(mark, a.OccupantJID(), "session-accept").Child(pnsJingle, "jingle")
	if acc.Attr("responder") != a.JID() || acc.Attr("initiator") != room+"/focus" || acc.Attr("sid") != "s1" {
		t.Errorf("accept attributes %s", acc)
	}
	var names []string
	for _, ct := range acc.All(pnsJingle, "content") {
		names = append(names, ct.Attr("name"))
		fp := ct.Child(pnsICE, "transport").Child(pnsDTLS, "fingerprint")
		if fp == nil || fp.Attr("setup") != "active" || fp.Text == "" {
			t.Errorf("content %s: transport %s", ct.Attr("name"), ct.Child(pnsICE, "transport"))
		}
	}
	if !slices.Equal(names, []string{"audio", "video", "data"}) {
		t.Errorf("accept contents %v", names)
	}
	video := acc.All(pnsJingle, "content")[1].Child(pnsRTP, "description")
	var pts []string
	for _, pt := range video.All(pnsRTP, "payload-type") {
		pts = append(pts, pt.Attr("id"))
	}
	srcs := video.All(pnsSSMA, "source")
	if !slices.Equal(pts, []string{"100", "96"}) || len(srcs) != 2 || srcs[0].Attr("name") != a.Nick()+"-v0" ||
		srcs[0].Attr("videoType") != "camera" || ptAttr(srcs[0].Child("", "parameter"), "name") != "msid" ||
		video.Child(pnsSSMA, "ssrc-group").Attr("semantics") != "FID" || len(video.All(pnsHdrExt, "rtp-hdrext")) != 1 {
		t.Errorf("video description %s", video)
	}
	if acc.All(pnsJingle, "content")[0].Child(pnsICE, "transport").Child(pnsICE, "candidate") == nil {
		t.Error("no candidate in the accept")
	}
	f.jingleFrom(mark, a.OccupantJID(), "transport-info")
	f.wait(mark, "SourceInfo update", func(e *Elem) bool {
		return e.Local == "presence" && e.Attr("from") == a.OccupantJID() && strings.Contains(ptChildText(e, "SourceInfo"), `"`+a.Nick()+`-a0":{"muted":false}`)
	})
	if err := a.WaitFor(ctx, a.Accepted); err != nil {
		t.Fatal(err)
	}
	rs := a.RemoteSources()
	if !slices.Equal(rs["abcd1234"], []uint32{1001, 1002, 1003}) || !slices.Equal(rs["jvb"], []uint32{9, 8}) {
		t.Errorf("remote sources %v", rs)
	}
	if v := a.Violations(); len(v) != 0 {
		t.Errorf("violations for a good offer: %q", v)
	}

	// --- source-add (XML) / source-remove (JSON), session checks ---
	add, _ := ParseElem(`<jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s1'><content name='audio'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>` +
		`<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2001' name='efgh5678-a0'><ssrc-info xmlns='http://jitsi.org/jitmeet' owner='efgh5678'/>` +
		`<parameter xmlns='urn:xmpp:jingle:apps:rtp:1' name='msid' value='x y'/></source></description></content></jingle>`)
	if _, err := f.iq(a.OccupantJID(), add); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WaitJingle(ctx, "source-add", "efgh5678"); err != nil {
		t.Fatal(err)
	}
	rm, _ := ParseElem(`<jingle xmlns='urn:xmpp:jingle:1' action='source-remove' sid='s1'><json-message xmlns='http://jitsi.org/jitmeet'>{"sources":{"abcd1234":[[],[],[{"s":1003}]]}}</json-message></jingle>`)
	if _, err := f.iq(a.OccupantJID(), rm); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitFor(ctx, func() bool {
		rs := a.RemoteSources()
		return slices.Equal(rs["efgh5678"], []uint32{2001}) && slices.Equal(rs["abcd1234"], []uint32{1001, 1002})
	}); err != nil {
		t.Errorf("remote sources after add/remove: %v", a.RemoteSources())
	}
	wantCond := func(what string, j *Elem, cond string) {
		t.Helper()
		_, err := f.iq(a.OccupantJID(), j)
		var se *StanzaError
		if !errors.As(err, &se) || se.Condition != cond {
			t.Errorf("%s: got %v, want %s", what, err, cond)
		}
	}
	wantCond("duplicate sid", ptOffer("s1", true, ptTestSources), "service-unavailable")
	wantCond("unknown action", NewElem(pnsJingle, "jingle", "action", "session-info", "sid", "s1"), "bad-request")
	wantCond("unknown sid", NewElem(pnsJingle, "jingle", "action", "source-add", "sid", "nope"), "item-not-found")

	// --- mute from the focus: no answer (as the client), SourceInfo muted ---
	mark = f.mark()
	f.c.Send(NewElem("", "iq", "type", "set", "to", a.OccupantJID(), "id", "mute1").
		Add(NewElem(pnsMute+"audio", "mute", "actor", room+"/other").SetText("true")))
	f.wait(mark, "muted SourceInfo", func(e *Elem) bool {
		return e.Local == "presence" && e.Attr("from") == a.OccupantJID() && strings.Contains(ptChildText(e, "SourceInfo"), `"`+a.Nick()+`-a0":{"muted":true}`)
	})
	if len(a.Mutes()) != 1 || !a.Muted(a.Nick()+"-a0") || a.Muted(a.Nick()+"-v0") {
		t.Errorf("mutes %d", len(a.Mutes()))
	}

	// Unmuting after a focus mute tells the focus (mute IQ for itself, "false").
	mark = f.mark()
	if err := a.SetMuted(ctx, "audio", false); err != nil {
		t.Fatal(err)
	}
	um := f.wait(mark, "self-unmute IQ", func(e *Elem) bool { return e.Child(pnsMute+"audio", "mute") != nil }).Child(pnsMute+"audio", "mute")
	if um.Attr("jid") != a.OccupantJID() || um.Text != "false" || a.Muted(a.Nick()+"-a0") {
		t.Errorf("self-unmute %s", um)
	}

	// --- screenshare, source removal, restart request ---
	mark = f.mark()
	if err := a.AddScreenshare(ctx); err != nil {
		t.Fatal(err)
	}
	sa := f.jingleFrom(mark, a.OccupantJID(), "source-add").Child(pnsJingle, "jingle")
	if s := sa.Child(pnsJingle, "content").Child(pnsRTP, "description").Child(pnsSSMA, "source"); s.Attr("videoType") != "desktop" || s.Attr("name") != a.Nick()+"-v1" {
		t.Errorf("screenshare source-add %s", sa)
	}
	desk := a.LocalSources()[2]
	if err := a.RemoveSources(ctx, desk.SSRC); err != nil {
		t.Fatal(err)
	}
	sr := f.jingleFrom(mark, a.OccupantJID(), "source-remove").Child(pnsJingle, "jingle").Child(pnsJingle, "content").Child(pnsRTP, "description")
	if len(sr.All(pnsSSMA, "source")) != 2 || sr.Child(pnsSSMA, "ssrc-group") == nil || len(a.LocalSources()) != 2 {
		t.Errorf("source-remove %s", sr)
	}
	if err := a.RequestRestart(ctx); err != nil {
		t.Fatal(err)
	}
	term := f.jingleFrom(mark, a.OccupantJID(), "session-terminate").Child(pnsJingle, "jingle")
	bs := term.Child(pnsFocus, "bridge-session")
	if term.Child(pnsJingle, "reason").Child("", "connectivity-error") == nil || ptChildText(term.Child(pnsJingle, "reason"), "text") != "ICE FAILED" ||
		bs.Attr("id") != "bs-s1" || bs.Attr("restart") != "true" {
		t.Errorf("restart request %s", term)
	}
	if a.SID() != "" || len(a.RemoteSources()) != 0 {
		t.Errorf("after restart: sid %q sources %v", a.SID(), a.RemoteSources())
	}

	// --- offers the browser cannot use fully: violations ---
	if _, err := f.iq(a.OccupantJID(), ptOffer("s2", false, ptTestSources)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WaitEvent(ctx, 0, func(e Event) bool { return e.Kind == EventOfferFailed && e.SID == "s2" }); err != nil {
		t.Fatal(err)
	}
	noMSID := `{"sources":{"abcd1234":[[{"s":3001,"n":"abcd1234-v0"}]]}}`
	mark = f.mark()
	if _, err := f.iq(a.OccupantJID(), ptOffer("s3", true, noMSID)); err != nil {
		t.Fatal(err)
	}
	f.jingleFrom(mark, a.OccupantJID(), "session-accept") // still accepted
	v := strings.Join(a.Violations(), "\n")
	if !strings.Contains(v, "sid=s2") || !strings.Contains(v, "no DTLS fingerprint") || !strings.Contains(v, "ssrc=3001") || !strings.Contains(v, "no msid") {
		t.Errorf("violations:\n%s", v)
	}
	if len(a.Sent("session-accept")) != 2 || len(a.Offers()) != 3 {
		t.Errorf("accepts sent %d, offers %d", len(a.Sent("session-accept")), len(a.Offers()))
	}

	// --- ManualAccept: nothing is sent until Accept ---
	m := ptJoin(t, ctx, ParticipantConfig{Addr: p.C2SAddr(), ManualAccept: true, Sources: []Source{}})
	if _, err := f.iq(m.OccupantJID(), ptOffer("m1", true, ptTestSources)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if len(m.Sent("session-accept")) != 0 {
		t.Error("ManualAccept participant accepted by itself")
	}
	if err := m.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	macc := m.Sent("session-accept")[0].Child(pnsJingle, "jingle").Child(pnsJingle, "content")
	if macc.Attr("senders") != "responder" || macc.Child(pnsRTP, "description").Child(pnsSSMA, "source") != nil {
		t.Errorf("receive-only accept %s", macc)
	}

	// --- offer from an occupant that is not room/focus: P2P, declined ---
	evilIn := ptNewRec(t)
	ectx, ecancel := context.WithTimeout(ctx, 10*time.Second)
	defer ecancel()
	evil, err := Dial(ectx, DialConfig{Addr: p.C2SAddr(), Domain: Domain, Handler: evilIn.record})
	if err != nil {
		t.Fatal(err)
	}
	defer evil.Close()
	evil.Send(NewElem("", "presence", "to", room+"/evil").Add(NewElem(pnsMUC, "x")))
	evilIn.wait(0, "evil joined", func(e *Elem) bool { return e.Attr("from") == room+"/evil" })
	if _, err := evil.SendIQ(ectx, NewElem("", "iq", "type", "set", "to", a.OccupantJID()).Add(ptOffer("e1", true, ptTestSources))); err != nil {
		t.Fatal(err)
	}
	dec := evilIn.jingleFrom(0, a.OccupantJID(), "session-terminate").Child(pnsJingle, "jingle")
	if dec.Child(pnsJingle, "reason").Child("", "decline") == nil || dec.Attr("sid") != "e1" {
		t.Errorf("non-focus offer answered with %s", dec)
	}

	// --- room whose focusjid does not match the occupant at room/focus ---
	room2 := "room2@" + MUCDomain
	f.mu.Lock()
	f.focusJID[room2] = "other@" + AuthDomain
	f.mu.Unlock()
	b := ptJoin(t, ctx, ParticipantConfig{Addr: p.C2SAddr(), Room: room2})
	if b.FocusOccupant() != "" {
		t.Errorf("focus recognised as %q", b.FocusOccupant())
	}
	mark = f.mark()
	if _, err := f.iq(b.OccupantJID(), ptOffer("x1", true, ptTestSources)); err != nil {
		t.Fatal(err)
	}
	sec := f.jingleFrom(mark, b.OccupantJID(), "session-terminate").Child(pnsJingle, "jingle")
	if sec.Child(pnsJingle, "reason").Child("", "security-error") == nil {
		t.Errorf("unrecognised focus's offer answered with %s", sec)
	}
	if len(b.Sent("session-accept")) != 0 {
		t.Error("accepted an offer from an unrecognised focus")
	}

	// --- HTTP conference request ---
	room3 := "room3@" + MUCDomain
	var body map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&body)
		if r.URL.Path != "/conference-request/v1" || r.Method != http.MethodPost || f.createRoom(room3) != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"ready": true, "focusJid": "focus@auth.meet.test", "room": room3})
	}))
	defer srv.Close()
	mark = f.mark()
	h := ptJoin(t, ctx, ParticipantConfig{Addr: p.C2SAddr(), Room: room3, UseHTTP: srv.URL})
	f.wait(mark, "HTTP participant presence", func(e *Elem) bool { return e.Attr("from") == h.OccupantJID() })
	if body["machineUid"] == nil || body["room"] != room3 || h.FocusOccupant() != room3+"/focus" ||
		body["properties"].(map[string]any)["rtcstatsEnabled"] != false {
		t.Errorf("HTTP request body %v, focus %q", body, h.FocusOccupant())
	}

	// --- a failing conference request ---
	_, err = JoinConference(ctx, ParticipantConfig{Addr: p.C2SAddr(), FocusJID: "nobody@" + AuthDomain + "/x"})
	var ce *ConferenceError
	if !errors.As(err, &ce) || ce.Condition != "service-unavailable" {
		t.Errorf("conference request to an offline focus: %v", err)
	}

	// --- leave, close: no goroutine of a participant survives ---
	mark = f.mark()
	a.Leave()
	f.wait(mark, "unavailable", func(e *Elem) bool { return e.Attr("from") == a.OccupantJID() && e.Attr("type") == "unavailable" })
	for _, x := range []*Participant{a, b, h, m} {
		x.Close()
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "(*Participant)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("participant goroutines left after Close:\n%s", stacks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
