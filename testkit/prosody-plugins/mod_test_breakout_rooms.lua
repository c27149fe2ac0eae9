-- minifocus testkit: a stand-in for the breakout-room side of Jitsi's
-- mod_muc_breakout_rooms, loaded on the breakout MUC. What the focus
-- depends on is reproduced:
--   * a breakout room belongs to a main room of the conference MUC, and
--     only a breakout room of an existing main room can be created;
--   * its configuration form and disco#info say so: muc#roominfo_isbreakout
--     (true) and muc#roominfo_breakout_main_room (the main room's JID);
--   * affiliations there are those of the main room, so whoever moderates
--     the main room moderates its breakout rooms and nobody else does.
-- Difference: Jitsi's module creates breakout rooms on a moderator's
-- request (a message to the component, tied to the web session's room) and
-- names them with random ids; here the main room is in the name instead:
-- "<main room name>_<anything>@<breakout MUC>".

local jid_split = require "util.jid".split;
local jid_host = require "util.jid".host;

local main_muc = module:get_option_string("main_muc");
local muc = module:depends("muc");

local function main_room_jid(room_jid)
	local node = jid_split(room_jid);
	local main = node and node:match("^(.-)_[^_]+$");
	return main and (main .. "@" .. main_muc) or nil;
end

local function main_room(room_jid)
	local j = main_room_jid(room_jid);
	local host = prosody.hosts[main_muc];
	local svc = host and host.modules.muc;
	return j and svc and svc.get_room_from_jid(j), j;
end

module:hook("muc-room-pre-create", function(event)
	if not main_room(event.room.jid) then
		event.room:destroy(nil, "Breakout room is invalid.");
		return true;
	end
end);

module:hook("muc-config-form", function(event)
	table.insert(event.form, { name = "muc#roominfo_isbreakout"; type = "boolean"; label = "Breakout room"; value = true });
	table.insert(event.form, { name = "muc#roominfo_breakout_main_room"; label = "Main room"; value = main_room_jid(event.room.jid) });
end);

module:hook("muc-disco#info", function(event)
	table.insert(event.form, { name = "muc#roominfo_isbreakout"; type = "boolean"; label = "Breakout room" });
	event.formdata["muc#roominfo_isbreakout"] = true;
	table.insert(event.form, { name = "muc#roominfo_breakout_main_room"; label = "Main room" });
	event.formdata["muc#roominfo_breakout_main_room"] = main_room_jid(event.room.jid);
end);

local own_affiliation = muc.room_mt.get_affiliation;
muc.room_mt.get_affiliation = function(room, jid)
	if jid_host(room.jid) ~= module.host then
		return own_affiliation(room, jid);
	end
	local main = main_room(room.jid);
	if not main then
		return "none";
	end
	return main:get_affiliation(jid) or "none";
end;
