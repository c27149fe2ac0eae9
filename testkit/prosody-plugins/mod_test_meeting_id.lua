-- minifocus testkit: a stand-in for Jitsi's mod_muc_meeting_id, written for
-- these tests (Debian's Prosody does not ship Jitsi's modules). Loaded on the
-- conference MUC. What it reproduces, because the focus depends on it:
--   * every room gets a random meeting id when it is created;
--   * the id is a text field named muc#roominfo_meetingId, both in the
--     owner's configuration form (where Jicofo reads it after joining) and
--     in the room's disco#info form (where clients and Jibri read it);
--   * a server admin (the focus) may replace it by submitting the field;
--     anyone else submitting it is ignored.
-- Not reproduced: holding back occupants who join before the focus (the
-- test layout lets only admins create rooms, so the focus is always first),
-- region tagging and the nick scrubbing of group chat messages.

local new_id = require "util.uuid".generate;
local is_admin = require "core.usermanager".is_admin;

local FIELD = "muc#roominfo_meetingId";

module:hook("muc-room-created", function(event)
	event.room._data.meetingId = new_id();
end);

local function field(room)
	return { name = FIELD; type = "text-single"; label = "Meeting id"; value = room._data.meetingId or "" };
end

module:hook("muc-config-form", function(event)
	table.insert(event.form, field(event.room));
end, 87);

module:hook("muc-disco#info", function(event)
	table.insert(event.form, { name = FIELD; type = "text-single"; label = "Meeting id" });
	event.formdata[FIELD] = event.room._data.meetingId or "";
end);

module:hook("muc-config-submitted/" .. FIELD, function(event)
	if is_admin(event.actor, module.host) then
		event.room._data.meetingId = event.value;
	end
	return true;
end, 99);
