package main

// offer.go: core wire codec: the Jingle offer (codecs, payload types, header extensions) and its Colibri2 media.

import (
	"strconv"
)

// videoCodec is one video payload type of the offer and its RTX partner.
type videoCodec struct {
	name      string
	pt, rtxPT int
	on        func(CodecConfig) bool
	params    [][2]string
	rtxFB     bool // the RTX payload type carries fir/nack/pli too
}

// BuildOffer returns the contents offered to a participant with features f:
// audio, video and data, each only if both the config and f allow it. Each
// content has a description (ending in <rtcp-mux/>) and no transport; the
// caller must not modify the result if it reuses it.
func BuildOffer(codec CodecConfig, f Features) []*Element {
	var out []*Element
	if f.Audio {
		out = append(out, offerContent("audio", audioDescription(codec, f)))
	}
	if f.Video {
		out = append(out, offerContent("video", videoDescription(codec, f)))
	}
	if f.SCTP && codec.SCTP {
		d := NewElement(nsRTP, "description", "media", "application")
		d.Add(NewElement(nsRTP, "rtcp-mux"))
		out = append(out, offerContent("data", d))
	}
	return out
}

func offerContent(name string, desc *Element) *Element {
	c := NewElement(nsJingle, "content", "creator", "initiator", "name", name, "senders", "both")
	return c.Add(desc)
}

func payloadType(pt int, name, clock string, kv ...string) *Element {
	attrs := append([]string{"id", strconv.Itoa(pt), "name", name, "clockrate", clock}, kv...)
	return NewElement(nsRTP, "payload-type", attrs...)
}

func parameter(name, value string) *Element {
	if name == "" {
		return NewElement(nsRTP, "parameter", "value", value)
	}
	return NewElement(nsRTP, "parameter", "name", name, "value", value)
}

func rtcpFB(typ, subtype string) *Element {
	if subtype == "" {
		return NewElement(nsRTCPFB, "rtcp-fb", "type", typ)
	}
	return NewElement(nsRTCPFB, "rtcp-fb", "type", typ, "subtype", subtype)
}

func hdrExt(id int, uri string) *Element {
	return NewElement(nsHdrExt, "rtp-hdrext", "id", strconv.Itoa(id), "uri", uri)
}

func audioDescription(codec CodecConfig, f Features) *Element {
	d := NewElement(nsRTP, "description", "media", "audio", "maxptime", "60")
	if codec.OpusRED && f.OpusRED {
		red := payloadType(ptRED, "red", "48000", "channels", "2")
		red.Add(parameter("", strconv.Itoa(ptOpus)+"/"+strconv.Itoa(ptOpus)))
		d.Add(red)
	}
	opus := payloadType(ptOpus, "opus", "48000", "channels", "2")
	opus.Add(parameter("minptime", "10"))
	if !codec.OpusRED { // config only, not per participant (docs/jingle-and-sources.md#the-offer)
		opus.Add(parameter("useinbandfec", "1"))
	}
	if f.TCC {
		opus.Add(rtcpFB("transport-cc", ""))
	}
	d.Add(opus)
	if codec.TelephoneEvent {
		d.Add(payloadType(ptTelephoneEvent, "telephone-event", "8000"))
	}
	d.Add(hdrExt(idAudioLevel, extAudioLevel))
	if codec.MIDExtension {
		d.Add(hdrExt(idMID, extMID))
	}
	if f.TCC {
		d.Add(hdrExt(idTCC, extTCC))
	}
	if codec.ExtmapAllowMix {
		d.Add(NewElement(nsHdrExt, "extmap-allow-mixed"))
	}
	return d.Add(NewElement(nsRTP, "rtcp-mux"))
}

func videoDescription(codec CodecConfig, f Features) *Element {
	d := NewElement(nsRTP, "description", "media", "video")
	remb := f.REMB && !f.TCC
	for _, vc := range videoCodecs {
		if !vc.on(codec) {
			continue
		}
		p := payloadType(vc.pt, vc.name, "90000")
		for _, kv := range vc.params {
			p.Add(parameter(kv[0], kv[1]))
		}
		p.Add(rtcpFB("ccm", "fir"), rtcpFB("nack", ""), rtcpFB("nack", "pli"))
		if remb {
			p.Add(rtcpFB("goog-remb", ""))
		}
		if f.TCC {
			p.Add(rtcpFB("transport-cc", ""))
		}
		d.Add(p)
	}
	if f.RTX {
		for _, i := range rtxOrder {
			vc := videoCodecs[i]
			if !vc.on(codec) || vc.rtxPT <= 0 {
				continue
			}
			p := payloadType(vc.rtxPT, "rtx", "90000")
			p.Add(parameter("apt", strconv.Itoa(vc.pt)))
			if vc.rtxFB {
				p.Add(rtcpFB("ccm", "fir"), rtcpFB("nack", ""), rtcpFB("nack", "pli"))
			}
			d.Add(p)
		}
	}
	if codec.VideoLayersAlloc {
		d.Add(hdrExt(idVideoLayers, extVideoLayers))
	}
	if codec.AV1DependencyDD {
		d.Add(hdrExt(idAV1DD, extAV1DD))
	}
	if codec.MIDExtension {
		d.Add(hdrExt(idMID, extMID))
	}
	if codec.AbsSendTime {
		d.Add(hdrExt(idAbsSendTime, extAbsSendTime))
	}
	if f.TCC {
		d.Add(hdrExt(idTCC, extTCC))
	}
	if codec.ExtmapAllowMix {
		d.Add(NewElement(nsHdrExt, "extmap-allow-mixed"))
	}
	return d.Add(NewElement(nsRTP, "rtcp-mux"))
}

// OfferHasData reports whether the offer has the SCTP data content (and so
// whether the bridge must be asked for SCTP).
func OfferHasData(offer []*Element) bool {
	for _, c := range offer {
		if c.Attr("name") == "data" {
			return true
		}
	}
	return false
}

// ColibriMedia returns the colibri2 <media type="audio|video"> elements for
// the endpoint allocation: the payload types, header extensions and
// extmap-allow-mixed of that participant's offer (docs/colibri2.md#endpoint-allocation).
func ColibriMedia(offer []*Element) []*Element {
	var out []*Element
	for _, c := range offer {
		d := c.Child(nsRTP, "description")
		media := d.Attr("media")
		if media != "audio" && media != "video" {
			continue
		}
		m := NewElement(nsColibri2, "media", "type", media)
		for _, k := range d.Children {
			switch {
			case k.Space == nsRTP && k.Local == "payload-type",
				k.Space == nsHdrExt && k.Local == "rtp-hdrext",
				k.Space == nsHdrExt && k.Local == "extmap-allow-mixed":
				m.Add(k.Copy())
			}
		}
		out = append(out, m)
	}
	return out
}
