-- minifocus testkit: a stand-in for Jitsi's token authentication
-- (mod_auth_token with its token verification), written for these tests.
-- What the focus sees of a JWT deployment is reproduced: a user whose token
-- verifies is logged in on the main domain (the focus's auth.login-domain);
-- without a valid token there is no login there (guests use the guest host).
-- The token is an HS256 JWT signed with app_secret; its issuer must be
-- app_id and it must not have expired.
-- Differences, none visible to the focus: Jitsi's module takes the token
-- from the BOSH or WebSocket URL and logs the user in with SASL ANONYMOUS
-- under a random user name; the simulated participants speak plain c2s, so
-- here the token is the SASL PLAIN password and the user name is the
-- client's choice. Room, audience and subject claims are not checked, and
-- the token's context (user name, moderator flag) is only kept on the
-- session, as Jitsi's module does for other modules to use.

local hashes = require "util.hashes";
local base64 = require "util.encodings".base64;
local json = require "util.json";
local new_sasl = require "util.sasl".new;

local secret = module:get_option_string("app_secret");
local issuer = module:get_option_string("app_id");

local function unb64url(s)
	s = s:gsub("-", "+"):gsub("_", "/");
	if #s % 4 ~= 0 then
		s = s .. string.rep("=", 4 - #s % 4);
	end
	return base64.decode(s);
end

local function verify(token)
	if not secret or not token then
		return nil;
	end
	local h, p, sig = token:match("^([%w_-]+)%.([%w_-]+)%.([%w_-]+)$");
	if not h then
		return nil;
	end
	local header = json.decode(unb64url(h) or "");
	if type(header) ~= "table" or header.alg ~= "HS256" then
		return nil;
	end
	if unb64url(sig) ~= hashes.hmac_sha256(secret, h .. "." .. p) then
		return nil;
	end
	local claims = json.decode(unb64url(p) or "");
	if type(claims) ~= "table" then
		return nil;
	end
	if type(claims.exp) == "number" and claims.exp < os.time() then
		return nil;
	end
	if issuer and claims.iss ~= issuer then
		return nil;
	end
	return claims;
end

local provider = {};

function provider.test_password(_, password)
	return verify(password) ~= nil;
end
function provider.get_password() return nil; end
function provider.set_password() return nil, "tokens only"; end
function provider.user_exists() return true; end
function provider.create_user() return nil, "tokens only"; end
function provider.delete_user() return nil, "tokens only"; end
function provider.users() return function() return nil; end; end

function provider.get_sasl_handler(session)
	return new_sasl(module.host, {
		plain_test = function(_, _, password)
			local claims = verify(password);
			if claims and type(claims.context) == "table" then
				session.jitsi_meet_context_user = claims.context.user;
			end
			return claims ~= nil, true;
		end;
	});
end

module:provides("auth", provider);
