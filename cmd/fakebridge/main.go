// Command fakebridge runs one fake Jitsi Videobridge (testkit.FakeBridge)
// against an XMPP server until interrupted: it joins the brewery, publishes
// stats presence, answers health checks and Colibri2 requests, and logs each
// Colibri2 request and its outcome on one line.
//
//	go run ./cmd/fakebridge -server 127.0.0.1:5222 -domain auth.meet.test \
//	    -user jvb -password jvbpass -brewery jvbbrewery@internal.auth.meet.test \
//	    -nick jvb1 -region r1 -stress 0.1
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"minifocus/testkit"
)

func main() {
	var cfg testkit.FakeBridgeConfig
	flag.StringVar(&cfg.Addr, "server", "127.0.0.1:5222", "XMPP c2s address (host:port)")
	flag.StringVar(&cfg.Domain, "domain", testkit.AuthDomain, "XMPP domain to log in to")
	flag.StringVar(&cfg.User, "user", testkit.JVBUser, "XMPP username")
	flag.StringVar(&cfg.Password, "password", "", "XMPP password (default: the test layout's)")
	flag.StringVar(&cfg.Resource, "resource", "", "resource to bind (default: server-assigned)")
	flag.StringVar(&cfg.Brewery, "brewery", "jvbbrewery@"+testkit.InternalMUCDomain, "brewery MUC bare JID")
	flag.StringVar(&cfg.Nick, "nick", "jvb1", "occupant nick in the brewery (the bridge's identity)")
	flag.StringVar(&cfg.Region, "region", "", "region stat")
	flag.StringVar(&cfg.RelayID, "relay-id", "", "relay_id stat (enables relays)")
	flag.Float64Var(&cfg.Stress, "stress", 0, "stress_level stat")
	flag.StringVar(&cfg.Version, "version", "", "version stat (default 2.3.0-fake)")
	flag.DurationVar(&cfg.PresenceInterval, "presence-interval", 5*time.Second, "stats presence period")
	flag.StringVar(&cfg.IP, "ip", "127.0.0.1", "host candidate address")
	flag.IntVar(&cfg.Port, "port", 10000, "host candidate port")
	flag.StringVar(&cfg.ServerID, "server-id", "default-id", "colibri-ws server id")
	flag.StringVar(&cfg.WebSocketDomain, "ws-domain", "", "colibri-ws host[:port] (default <ip>:443)")
	drain := flag.Bool("drain", false, "publish drain=true")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	cfg.Logf = log.Printf

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	b, err := testkit.StartFakeBridge(ctx, cfg)
	cancel()
	if err != nil {
		log.Fatal(err)
	}
	b.SetDrain(*drain)
	log.Printf("fake bridge %s up as %s (connection %s)", cfg.Nick, b.JID(), b.ClientJID())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	log.Printf("shutting down")
	b.Close()
}
