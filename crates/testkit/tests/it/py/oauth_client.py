"""The OAuth2 code flow with PKCE, driven by authlib (a real OAuth client
library) against chatstudio: sign in to the console, open the consent page
authlib's authorization URL leads to, allow, let authlib fetch the token,
call API v1 with it, refresh it (rotation) and revoke it.

Usage: oauth_client.py BASE CLIENT_ID CLIENT_SECRET REDIRECT_URI EMAIL PASSWORD
Prints one JSON object of what it saw."""

import html
import json
import os
import re
import sys

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

# The test server speaks plain HTTP on loopback.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

base, client_id, client_secret, redirect_uri, email, password = sys.argv[1:7]
seen = {}


def hidden_fields(page):
    return {
        html.unescape(n): html.unescape(v)
        for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }


browser = requests.Session()
login = browser.get(base + "/login/")
token = hidden_fields(login.text)["csrfmiddlewaretoken"]
signed_in = browser.post(
    base + "/login/",
    data={"csrfmiddlewaretoken": token, "email": email, "password": password, "next": "/"},
    allow_redirects=False,
)
seen["sign_in"] = signed_in.status_code

client = OAuth2Session(
    client_id,
    client_secret,
    scope="chatbots:read sessions:read",
    redirect_uri=redirect_uri,
    code_challenge_method="S256",
    token_endpoint_auth_method="client_secret_basic",
)
verifier = generate_token(48)
url, state = client.create_authorization_url(base + "/o/authorize/", code_verifier=verifier)
consent = browser.get(url)
seen["consent"] = consent.status_code
fields = hidden_fields(consent.text)
fields["allow"] = "1"
answer = browser.post(base + "/o/authorize/", data=fields, allow_redirects=False)
location = answer.headers["Location"]
seen["redirected_to_client"] = location.startswith(redirect_uri)

tok = client.fetch_token(
    base + "/o/token/", authorization_response=location, code_verifier=verifier
)
seen["token_type"] = tok["token_type"]
seen["scope"] = tok["scope"]
seen["has_refresh"] = "refresh_token" in tok

bots = client.get(base + "/api/experiments/")
seen["experiments"] = bots.status_code
seen["experiment_count"] = len(bots.json()["results"])

old_refresh = tok["refresh_token"]
new = client.refresh_token(base + "/o/token/", refresh_token=old_refresh)
seen["rotated"] = new["refresh_token"] != old_refresh
seen["after_refresh"] = client.get(base + "/api/experiments/").status_code

revoked = client.revoke_token(base + "/o/revoke_token/", token=new["access_token"])
seen["revoke"] = revoked.status_code
seen["after_revoke"] = client.get(base + "/api/experiments/").status_code

# A wrong verifier: authlib hears invalid_grant.
client2 = OAuth2Session(
    client_id, client_secret, scope="chatbots:read", redirect_uri=redirect_uri,
    code_challenge_method="S256",
)
url2, _ = client2.create_authorization_url(base + "/o/authorize/", code_verifier=generate_token(48))
fields = hidden_fields(browser.get(url2).text)
fields["allow"] = "1"
location2 = browser.post(base + "/o/authorize/", data=fields, allow_redirects=False).headers["Location"]
try:
    client2.fetch_token(base + "/o/token/", authorization_response=location2, code_verifier=generate_token(48))
    seen["wrong_verifier"] = "accepted"
except Exception as e:  # authlib raises OAuthError with the error code
    seen["wrong_verifier"] = getattr(e, "error", type(e).__name__)

print(json.dumps(seen))
