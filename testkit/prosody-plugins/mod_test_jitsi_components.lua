-- minifocus testkit: loaded on the main virtual host, it announces Jitsi's
-- components the way Jitsi's host modules do (mod_av_moderation,
-- mod_room_metadata, mod_muc_breakout_rooms each add one identity to the
-- domain's disco#info): category "component", the type, and the
-- component's address as the name. The focus finds them there, as Jicofo
-- does. The addresses come from the options below.

for _, c in ipairs(module:get_option_array("test_jitsi_components", {})) do
	local kind, address = c:match("^([^=]+)=(.+)$");
	if kind then
		module:add_identity("component", kind, address);
	end
end
