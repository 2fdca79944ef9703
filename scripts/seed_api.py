"""What the seed scripts share: JSON calls to the services and logging in as a seeded user."""
import json
import sys
import urllib.error
import urllib.request


def call(method, url, token=None, body=None, headers=None):
    """(status, parsed JSON body or None); HTTP errors are answers, not exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def login(identity, user, password):
    """An access token for `user`, or exit with why not."""
    status, body = call("POST", f"{identity}/api/v1/users/login", body={"username": user, "password": password})
    if status != 200:
        sys.exit(f"seed: cannot log in as {user}: {status} {body}")
    return body["access_token"]
