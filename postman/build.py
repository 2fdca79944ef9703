#!/usr/bin/env python3
"""Generate the Postman walkthrough of Koupang (contract docs/contract.md, spec §10).

Writes, next to this file:

- ``koupang.postman_collection.json`` (Postman collection v2.1): the whole story in eight
  chapters (one folder each): identity, browsing, the cart, an order and its saga, a cancel with
  refund, failures, the sellers' side, and the admin's ledger and inventory views.
- ``local.postman_environment.json``: the base URL of each service on the local stack and the
  demo password of the seeded users.

The collection runs top to bottom, unattended, against a stack started by ``make up`` (which seeds
it with scripts/seed.sh, seed_catalog.py and seed_orders.py): ``make walkthrough``
(scripts/walkthrough.sh), or by hand from the repository root:

    postman/node_modules/.bin/newman run postman/koupang.postman_collection.json \
        -e postman/local.postman_environment.json

Every request asserts its status code and the fields the next requests use; captured ids and
tokens are collection variables (declared empty in the collection, so each run starts clean).
Asynchronous steps (the saga, the cart consumer, catalog restocks) are polled: the request
re-queues itself with ``pm.execution.setNextRequest`` (newman 6 deprecates the older
``postman.setNextRequest``) until its condition holds or its tries run out, waiting 500 ms
before each retry (at most 120 tries for an order's saga, 40 for the cart or the stock).

Only the standard library is used; run ``python3 postman/build.py`` after editing.
"""

import json
import re
import textwrap
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
API = "/api/v1"
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"

ENVIRONMENT = {
    "identity_url": "http://127.0.0.1:8081",
    "catalog_url": "http://127.0.0.1:8082",
    "cart_url": "http://127.0.0.1:8083",
    "order_url": "http://127.0.0.1:8084",
    "payment_url": "http://127.0.0.1:8085",
    "seed_password": "Koupang-dem0!",
}

# Collection variables with a starting value; everything a script captures is added (empty) too.
CONSTANTS = {
    "kettle_qty": ("2", "Units of KETTLE-1L (seller1) the chapter-4 order buys."),
    "hp_qty": ("1", "Units of HP-BLK (seller2) the chapter-4 order buys."),
    "poll_tries": ("0", "Tries of the polling request now running (reset when it settles)."),
}

ADDRESS = {
    "name": "Walk Through",
    "line1": "1 Demo Street",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}

# ---------------------------------------------------------------------------------------------
# JavaScript building blocks
# ---------------------------------------------------------------------------------------------

# Every test script starts with these: the parsed body ({} when there is none) and a short getter.
PREAMBLE = """
const body = (() => { try { return pm.response.json(); } catch (e) { return {}; } })();
const v = (name) => pm.collectionVariables.get(name);
"""

# Pre-request script of a polling request: wait before every retry (not before the first try).
# Newman lets a script's pending timers finish before it sends the request.
POLL_WAIT = """
if (Number(pm.collectionVariables.get("poll_tries") || 0) > 0) {
    setTimeout(() => {}, 500);
}
"""


def js(src):
    """A script as Postman stores it: a list of lines, common indentation removed."""
    return textwrap.dedent(src).strip("\n").splitlines()


def status_is(code, label=None):
    text = label or {200: "200 OK", 201: "201 Created", 202: "202 Accepted",
                     204: "204 No Content"}.get(code, str(code))
    return f'pm.test("answers {text}", () => pm.response.to.have.status({code}));'


def error_is(status, code, extra=""):
    """The one error body of contract §2 with a given status and code."""
    return f"""
pm.test("answers {status} {code} in the error body", () => {{
    pm.response.to.have.status({status});
    pm.expect(body.error.code).to.eql("{code}");
    pm.expect(body.error.message).to.be.a("string");
    pm.expect(body.error.request_id, "request_id").to.be.a("string");
}});
{extra}"""


def save(var, expr):
    return f'pm.collectionVariables.set("{var}", {expr});'


def poll(until, then, setup="", tries=120):
    """Test script that re-runs this request until ``until`` (a JS expression over ``body`` and
    whatever ``setup`` declares) holds, the answer is not 200, or ``tries`` runs were made; then
    the ``then`` assertions run once, on the last answer."""
    return f"""
{textwrap.dedent(setup).strip()}
const tries = Number(v("poll_tries") || 0) + 1;
const settled = pm.response.code !== 200 || ({until});
if (!settled && tries < {tries}) {{
    pm.collectionVariables.set("poll_tries", tries);
    pm.execution.setNextRequest(pm.info.requestName);
}} else {{
    pm.collectionVariables.set("poll_tries", 0);
    console.log(`${{pm.info.requestName}}: settled after ${{tries}} of {tries} tries`);
    pm.test("answers 200 OK", () => pm.response.to.have.status(200));
{textwrap.indent(textwrap.dedent(then).strip(), "    ")}
}}"""


def fresh_key(var):
    """Pre-request script: a new Idempotency-Key for this run's purchase."""
    return f"""
// A new purchase, so a new Idempotency-Key (a retry of it would reuse this one).
pm.collectionVariables.set("{var}", pm.variables.replaceIn("{{{{$guid}}}}"));
"""


# ---------------------------------------------------------------------------------------------
# Postman structures
# ---------------------------------------------------------------------------------------------

def num(var):
    """A JSON number taken from a variable: written unquoted into the raw body."""
    return f"@@num:{var}@@"


def raw_json(body):
    text = json.dumps(body, indent=2)
    return re.sub(r'"@@num:(\w+)@@"', r"{{\1}}", text)


def url(raw):
    """``{{service_url}}/path?query`` as a Postman URL object."""
    base, _, query = raw.partition("?")
    host, _, path = base.partition("/")
    out = {"raw": raw, "host": [host], "path": [p for p in path.split("/") if p]}
    if query:
        out["query"] = [dict(zip(("key", "value"), (q.split("=", 1) + [""])[:2]))
                        for q in query.split("&")]
    return out


def bearer(token_var):
    return {"type": "bearer",
            "bearer": [{"key": "token", "value": f"{{{{{token_var}}}}}", "type": "string"}]}


NAMES = set()


def req(name, method, raw_url, body=None, token=None, tests=(), prerequest=None, headers=None,
        description=None):
    """One request. ``token`` names the variable holding the access token sent as
    ``Authorization: Bearer``; ``tests`` are JS snippets run after the answer (after PREAMBLE);
    ``prerequest`` is a JS snippet run before sending."""
    assert name not in NAMES, f"duplicate request name {name!r} (setNextRequest needs unique names)"
    NAMES.add(name)
    request = {
        "method": method,
        "header": [],
        "url": url(raw_url),
        "auth": bearer(token) if token else {"type": "noauth"},
    }
    if body is not None:
        request["header"].append({"key": "Content-Type", "value": "application/json"})
        request["body"] = {"mode": "raw", "raw": raw_json(body),
                           "options": {"raw": {"language": "json"}}}
    for key, value in (headers or {}).items():
        request["header"].append({"key": key, "value": value})
    if description:
        request["description"] = textwrap.dedent(description).strip()
    events = []
    if prerequest:
        events.append({"listen": "prerequest",
                       "script": {"type": "text/javascript", "exec": js(prerequest)}})
    events.append({"listen": "test", "script": {
        "type": "text/javascript",
        "exec": js(PREAMBLE) + [""] + js("\n".join(textwrap.dedent(t).strip("\n") for t in tests)),
    }})
    return {"name": name, "event": events, "request": request}


def folder(name, description, items):
    return {"name": name, "description": textwrap.dedent(description).strip(), "item": items}


def svc(service, path):
    return f"{{{{{service}_url}}}}{API}{path}"

def poll_until_paid(name, order_var, more=""):
    """The buyer polls an order (its id in ``order_var``) until its saga settles, and asserts it
    ended confirmed with the payment captured; ``more`` adds assertions on the last answer."""
    return req(name, "GET", svc("order", "/orders/{{" + order_var + "}}"),
               token="buyer_access_token", prerequest=POLL_WAIT,
               tests=[poll(
                   until='(body.status === "confirmed" && body.payment_status === "captured")'
                         ' || body.status === "cancelled"',
                   then=textwrap.dedent("""
                       pm.test("confirmed, payment captured", () => {
                           pm.expect(body.status).to.eql("confirmed");
                           pm.expect(body.payment_status).to.eql("captured");
                       });
                   """) + textwrap.dedent(more))])



def login(name, username, password, token_var, refresh_var=None, tests=(), description=None):
    checks = [status_is(200), """
pm.test("a Bearer access token and a refresh token", () => {
    pm.expect(body.token_type).to.eql("Bearer");
    pm.expect(body.access_token).to.be.a("string").that.is.not.empty;
    pm.expect(body.refresh_token).to.be.a("string").that.is.not.empty;
    pm.expect(body.expires_in).to.be.above(0);
});""", save(token_var, "body.access_token")]
    if refresh_var:
        checks.append(save(refresh_var, "body.refresh_token"))
    return req(name, "POST", svc("identity", "/users/login"),
               body={"username": username, "password": password},
               tests=checks + list(tests), description=description)


# ---------------------------------------------------------------------------------------------
# Chapter 1: identity
# ---------------------------------------------------------------------------------------------

REFRESH = "1.4 Refresh the session"

identity = folder("1. Identity", """
    Register a new buyer (a fresh name every run), log in, rotate the session with the refresh
    token, and read the account back.

    Which buyer shops: identity refuses login until the email is verified only when
    `IDENTITY_REQUIRE_VERIFIED_EMAIL` is true (the default of the production profile;
    `make up` runs the local profile, where it is false). So on the local stack the new buyer
    logs in and shops in chapters 3 to 7. Where verification is required, login answers
    403 `EMAIL_NOT_VERIFIED`, the next request logs in the seeded, verified `buyer2` instead and
    every later chapter shops as buyer2 (the tokens live in the same variables).
""", [
    req("1.1 Register a buyer", "POST", svc("identity", "/users/register"),
        body={"username": "{{new_username}}", "email": "{{new_email}}",
              "password": "{{new_password}}", "role": "BUYER"},
        prerequest="""
            // A fresh account each run: usernames are 3-30 of [A-Za-z0-9_-]; `.invalid` is a
            // domain that never receives mail; the password has 8-128 characters with an
            // upper-case letter, a lower-case letter, a digit and a symbol.
            const stamp = Date.now();
            pm.collectionVariables.set("new_username", `walk${stamp}`);
            pm.collectionVariables.set("new_email", `walk${stamp}@koupang.invalid`);
            pm.collectionVariables.set("new_password", `Walk-${stamp}-ok!`);
        """,
        tests=[status_is(201), """
            pm.test("a BUYER account with the name and email given, email not yet verified", () => {
                pm.expect(body.id).to.be.a("string");
                pm.expect(body.username).to.eql(v("new_username"));
                pm.expect(body.email).to.eql(v("new_email"));
                pm.expect(body.role).to.eql("BUYER");
                pm.expect(body.email_verified).to.eql(false);
                pm.expect(body.status).to.eql("active");
            });
            pm.test("no password or hash in the answer", () => {
                pm.expect(body).to.not.have.property("password");
                pm.expect(body).to.not.have.property("password_hash");
            });
        """, save("new_user_id", "body.id")]),
    req("1.2 Log in as the new buyer", "POST", svc("identity", "/users/login"),
        body={"username": "{{new_username}}", "password": "{{new_password}}"},
        tests=[f"""
            if (pm.response.code === 200) {{
                pm.test("the new buyer logs in at once (this stack does not require a verified email)", () => {{
                    pm.expect(body.token_type).to.eql("Bearer");
                    pm.expect(body.access_token).to.be.a("string").that.is.not.empty;
                    pm.expect(body.refresh_token).to.be.a("string").that.is.not.empty;
                }});
                pm.collectionVariables.set("buyer_username", v("new_username"));
                pm.collectionVariables.set("buyer_access_token", body.access_token);
                pm.collectionVariables.set("buyer_refresh_token", body.refresh_token);
                // The new buyer shops: skip the buyer2 fallback.
                pm.execution.setNextRequest("{REFRESH}");
            }} else {{
                pm.test("403 EMAIL_NOT_VERIFIED: this stack requires verification, so buyer2 shops", () => {{
                    pm.response.to.have.status(403);
                    pm.expect(body.error.code).to.eql("EMAIL_NOT_VERIFIED");
                }});
            }}
        """]),
    login("1.3 Log in as buyer2 (only when the new buyer must verify first)",
          "buyer2", "{{seed_password}}", "buyer_access_token", "buyer_refresh_token",
          tests=[save("buyer_username", '"buyer2"')],
          description="Skipped (by `setNextRequest` in 1.2) when the new buyer could log in."),
    req(REFRESH, "POST", svc("identity", "/users/refresh"),
        body={"refresh_token": "{{buyer_refresh_token}}"},
        tests=[status_is(200), """
            pm.test("new tokens; the refresh token is rotated", () => {
                pm.expect(body.access_token).to.be.a("string").that.is.not.empty;
                pm.expect(body.refresh_token).to.be.a("string").that.is.not.empty;
                pm.expect(body.refresh_token).to.not.eql(v("buyer_refresh_token"));
            });
        """, save("buyer_access_token", "body.access_token"),
            save("buyer_refresh_token", "body.refresh_token")],
        description="The refresh token travels in the JSON body (`{refresh_token}`), not a cookie. "
                    "The old one is now used: presenting it again would revoke the whole session."),
    req("1.5 Read my account", "GET", svc("identity", "/users/me"), token="buyer_access_token",
        tests=[status_is(200), """
            pm.test("the logged-in buyer", () => {
                pm.expect(body.username).to.eql(v("buyer_username"));
                pm.expect(body.role).to.eql("BUYER");
                pm.expect(body.status).to.eql("active");
                if (v("buyer_username") === v("new_username")) {
                    pm.expect(body.id).to.eql(v("new_user_id"));
                }
            });
        """, save("buyer_id", "body.id")]),
])

# ---------------------------------------------------------------------------------------------
# Chapter 2: browsing (anonymous)
# ---------------------------------------------------------------------------------------------

LIST_FILTERS = ("category_id={{kitchen_category_id}}&brand_id={{acme_brand_id}}"
                "&min_price=10&max_price=100&sort=price_asc&limit=1")

FILTER_CHECK = """
pm.test("kitchen products of Acme priced 10 to 100, in USD", () => {
    pm.expect(body.items).to.be.an("array").that.is.not.empty;
    body.items.forEach((p) => {
        pm.expect(p.category_id).to.eql(v("kitchen_category_id"));
        pm.expect(p.brand_id).to.eql(v("acme_brand_id"));
        pm.expect(parseFloat(p.min_price)).to.be.within(10, 100);
        pm.expect(p.currency).to.eql("USD");
    });
});
"""

browse = folder("2. Browse", """
    The public catalog, no token: categories and brands (their ids are the listing's filters),
    the listing with filters, a price sort and keyset pages, text search, product detail by slug
    and the batch SKU lookup that cart and order use.

    Captures the SKUs the later chapters buy, one of each seller: KETTLE-1L and KETTLE-2L
    (`steel-kettle`, seller1) and HP-BLK (`wireless-headphones`, seller2), with their prices and
    availability now.
""", [
    req("2.1 List categories", "GET", svc("catalog", "/categories?limit=100"), tests=[
        status_is(200), """
        const kitchen = (body.items || []).find((c) => c.slug === "kitchen");
        pm.test("the seeded tree has `kitchen`", () => pm.expect(kitchen, "kitchen").to.be.an("object"));
        if (kitchen) { pm.collectionVariables.set("kitchen_category_id", kitchen.id); }
    """]),
    req("2.2 List brands", "GET", svc("catalog", "/brands?limit=100"), tests=[
        status_is(200), """
        const acme = (body.items || []).find((b) => b.slug === "acme");
        pm.test("the seeded brand `acme` is there", () => pm.expect(acme, "acme").to.be.an("object"));
        if (acme) { pm.collectionVariables.set("acme_brand_id", acme.id); }
    """]),
    req("2.3 List products: category, brand, price range, cheapest first", "GET",
        svc("catalog", "/products?" + LIST_FILTERS), tests=[status_is(200), FILTER_CHECK, """
        pm.test("one item (limit=1) and a cursor to the next page", () => {
            pm.expect(body.items).to.have.lengthOf(1);
            pm.expect(body.next_cursor).to.be.a("string").that.is.not.empty;
        });
        pm.collectionVariables.set("list_cursor", body.next_cursor);
        if (body.items && body.items[0]) {
            pm.collectionVariables.set("list_first_id", body.items[0].id);
            pm.collectionVariables.set("list_first_price", body.items[0].min_price);
        }
    """]),
    req("2.4 Next page of the same listing", "GET",
        svc("catalog", "/products?" + LIST_FILTERS + "&cursor={{list_cursor}}"),
        tests=[status_is(200), FILTER_CHECK, """
        pm.test("the next product, at the same price or dearer", () => {
            pm.expect(body.items[0].id).to.not.eql(v("list_first_id"));
            pm.expect(parseFloat(body.items[0].min_price))
                .to.be.at.least(parseFloat(v("list_first_price")));
        });
    """]),
    req("2.5 Search products for kettle", "GET", svc("catalog", "/products?q=kettle&limit=20"),
        tests=[status_is(200), """
        pm.test("the steel kettle is found", () => {
            pm.expect(body.items.map((p) => p.slug)).to.include("steel-kettle");
        });
    """]),
    req("2.6 List products, dearest first", "GET",
        svc("catalog", "/products?sort=price_desc&limit=10"), tests=[status_is(200), """
        pm.test("prices never rise down the page", () => {
            const prices = body.items.map((p) => parseFloat(p.min_price));
            pm.expect(prices).to.not.be.empty;
            prices.slice(1).forEach((p, i) => pm.expect(p).to.be.at.most(prices[i]));
        });
    """]),
    req("2.7 Product detail: steel-kettle (seller1)", "GET",
        svc("catalog", "/products/slug/steel-kettle"), tests=[status_is(200), """
        const skus = body.skus || [];
        const s1 = skus.find((s) => s.sku_code === "KETTLE-1L");
        const s2 = skus.find((s) => s.sku_code === "KETTLE-2L");
        pm.test("the active kettle, in USD, with SKUs KETTLE-1L and KETTLE-2L", () => {
            pm.expect(body.slug).to.eql("steel-kettle");
            pm.expect(body.status).to.eql("active");
            pm.expect(body.currency).to.eql("USD");
            pm.expect(s1, "KETTLE-1L").to.be.an("object");
            pm.expect(s2, "KETTLE-2L").to.be.an("object");
        });
        pm.test("the public sees `available`, not the shelf and held counters", () => {
            skus.forEach((s) => {
                pm.expect(s.available).to.be.a("number");
                pm.expect(s).to.not.have.property("stock_quantity");
                pm.expect(s).to.not.have.property("reserved_quantity");
            });
        });
        pm.test("enough KETTLE-1L and KETTLE-2L for this walk", () => {
            pm.expect(s1.available).to.be.at.least(Number(v("kettle_qty")) + 1);
            pm.expect(s2.available).to.be.at.least(1);
        });
        pm.collectionVariables.set("seller1_id", body.seller_id);
        pm.collectionVariables.set("kettle_product_id", body.id);
        if (s1) {
            pm.collectionVariables.set("kettle_1l_sku_id", s1.id);
            pm.collectionVariables.set("kettle_1l_price", s1.price);
            pm.collectionVariables.set("kettle_1l_available", s1.available);
        }
        if (s2) { pm.collectionVariables.set("kettle_2l_sku_id", s2.id); }
    """]),
    req("2.8 Product detail: wireless-headphones (seller2)", "GET",
        svc("catalog", "/products/slug/wireless-headphones"), tests=[status_is(200), """
        const hp = (body.skus || []).find((s) => s.sku_code === "HP-BLK");
        pm.test("active headphones of another seller, with SKU HP-BLK in stock", () => {
            pm.expect(body.status).to.eql("active");
            pm.expect(body.seller_id).to.not.eql(v("seller1_id"));
            pm.expect(hp, "HP-BLK").to.be.an("object");
            pm.expect(hp.available).to.be.at.least(Number(v("hp_qty")));
        });
        pm.collectionVariables.set("seller2_id", body.seller_id);
        if (hp) {
            pm.collectionVariables.set("hp_sku_id", hp.id);
            pm.collectionVariables.set("hp_price", hp.price);
        }
    """]),
    req("2.9 Batch SKU lookup", "GET",
        svc("catalog", "/skus?ids={{kettle_1l_sku_id}},{{hp_sku_id}}"), tests=[status_is(200), """
        const byId = Object.fromEntries((body.items || []).map((s) => [s.id, s]));
        const kettle = byId[v("kettle_1l_sku_id")];
        const hp = byId[v("hp_sku_id")];
        pm.test("both SKUs, buyable, with price, currency, seller and availability", () => {
            pm.expect(body.items).to.have.lengthOf(2);
            pm.expect(kettle.status).to.eql("active");
            pm.expect(hp.status).to.eql("active");
            pm.expect(kettle.currency).to.eql("USD");
            pm.expect(parseFloat(kettle.price)).to.eql(parseFloat(v("kettle_1l_price")));
            pm.expect(parseFloat(hp.price)).to.eql(parseFloat(v("hp_price")));
            pm.expect(kettle.available).to.eql(Number(v("kettle_1l_available")));
            pm.expect(kettle.seller_id).to.eql(v("seller1_id"));
            pm.expect(hp.seller_id).to.eql(v("seller2_id"));
            pm.expect(kettle.product_name).to.eql("Steel Kettle");
        });
    """], description="`ids` is a comma-separated list of at most 100 SKU ids."),
])

# ---------------------------------------------------------------------------------------------
# Chapter 3: cart
# ---------------------------------------------------------------------------------------------

cart = folder("3. Cart", """
    As the buyer: empty the cart, add one kettle and one pair of headphones (priced by the
    catalog, whatever a client would say), raise the kettle to `kettle_qty` units, validate the
    cart against the catalog now, and read the display totals.
""", [
    req("3.1 Empty the cart", "DELETE", svc("cart", "/cart"), token="buyer_access_token",
        tests=[status_is(204)]),
    req("3.2 Add one KETTLE-1L", "POST", svc("cart", "/cart/items"), token="buyer_access_token",
        body={"sku_id": "{{kettle_1l_sku_id}}", "quantity": 1}, tests=[status_is(200), """
        pm.test("one line, priced by the catalog", () => {
            pm.expect(body.items).to.have.lengthOf(1);
            pm.expect(body.items[0].sku_id).to.eql(v("kettle_1l_sku_id"));
            pm.expect(body.items[0].quantity).to.eql(1);
            pm.expect(parseFloat(body.items[0].unit_price)).to.eql(parseFloat(v("kettle_1l_price")));
            pm.expect(body.items[0].currency).to.eql("USD");
            pm.expect(body.item_count).to.eql(1);
        });
    """]),
    req("3.3 Add HP-BLK", "POST", svc("cart", "/cart/items"), token="buyer_access_token",
        body={"sku_id": "{{hp_sku_id}}", "quantity": num("hp_qty")}, tests=[status_is(200), """
        pm.test("two lines", () => {
            pm.expect(body.items.map((l) => l.sku_id))
                .to.have.members([v("kettle_1l_sku_id"), v("hp_sku_id")]);
            pm.expect(body.item_count).to.eql(1 + Number(v("hp_qty")));
        });
    """]),
    req("3.4 Change the kettle's quantity", "PUT",
        svc("cart", "/cart/items/{{kettle_1l_sku_id}}"), token="buyer_access_token",
        body={"quantity": num("kettle_qty")}, tests=[status_is(200), """
        const kettle = body.items.find((l) => l.sku_id === v("kettle_1l_sku_id"));
        const qty = Number(v("kettle_qty"));
        pm.test("the kettle line has the new quantity and line total", () => {
            pm.expect(kettle.quantity).to.eql(qty);
            pm.expect(parseFloat(kettle.line_total))
                .to.be.closeTo(qty * parseFloat(v("kettle_1l_price")), 0.001);
            pm.expect(body.item_count).to.eql(qty + Number(v("hp_qty")));
        });
    """]),
    req("3.5 Validate the cart against the catalog", "POST", svc("cart", "/cart/validate"),
        token="buyer_access_token", tests=[status_is(200), """
        pm.test("valid: every line ok, prices unchanged", () => {
            pm.expect(body.valid).to.eql(true);
            pm.expect(body.items).to.have.lengthOf(2);
            body.items.forEach((l) => {
                pm.expect(l.status).to.eql("ok");
                pm.expect(l.current_price).to.eql(l.snapshot_price);
                pm.expect(l.available).to.be.at.least(l.quantity);
            });
        });
    """]),
    req("3.6 Read the cart and its totals", "GET", svc("cart", "/cart"),
        token="buyer_access_token", tests=[status_is(200), """
        const expected = Number(v("kettle_qty")) * parseFloat(v("kettle_1l_price"))
            + Number(v("hp_qty")) * parseFloat(v("hp_price"));
        pm.test("one USD total: the sum of the lines", () => {
            pm.expect(body.items).to.have.lengthOf(2);
            pm.expect(body.totals).to.have.lengthOf(1);
            pm.expect(body.totals[0].currency).to.eql("USD");
            pm.expect(parseFloat(body.totals[0].amount)).to.be.closeTo(expected, 0.001);
        });
        pm.collectionVariables.set("cart_expected_total", expected.toFixed(2));
    """]),
])

# ---------------------------------------------------------------------------------------------
# Chapter 4: the order and its saga
# ---------------------------------------------------------------------------------------------

FROM_CART = {"from_cart": True, "shipping_address": ADDRESS, "payment_method": "tok_visa"}

order = folder("4. Order", """
    Order the cart (`from_cart: true`) with an `Idempotency-Key`; the answer is 202 with the
    order `pending`. Sending the same request with the same key again answers the same order.
    Then the saga runs: the catalog reserves stock (`awaiting_payment`), payment authorizes
    (`confirmed`) and captures (`payment_status: captured`); the order is polled until then.
    The cart's consumer of `OrderConfirmed` takes the bought lines out of the cart, and the
    kettle's public `available` is lower by the units bought (they were reserved, then committed
    on `OrderConfirmed`; chapter 8 shows the committed reservation as admin).
""", [
    req("4.1 Place the order from the cart", "POST", svc("order", "/orders"),
        token="buyer_access_token", body=FROM_CART, headers={"Idempotency-Key": "{{order_key}}"},
        prerequest=fresh_key("order_key"), tests=[status_is(202), """
        pm.test("pending, unpaid, priced by the catalog at the cart's total", () => {
            pm.expect(body.status).to.eql("pending");
            pm.expect(body.payment_status).to.eql("none");
            pm.expect(body.currency).to.eql("USD");
            pm.expect(parseFloat(body.total_amount))
                .to.be.closeTo(parseFloat(v("cart_expected_total")), 0.001);
            pm.expect(body.payment_method).to.eql("tok_visa");
            pm.expect(body.shipping_address.country).to.eql("US");
            pm.expect(body.payment_deadline, "payment_deadline").to.be.a("string");
        });
        pm.test("the two cart lines, one from each seller", () => {
            const kettle = body.items.find((i) => i.sku_id === v("kettle_1l_sku_id"));
            const hp = body.items.find((i) => i.sku_id === v("hp_sku_id"));
            pm.expect(body.items).to.have.lengthOf(2);
            pm.expect(kettle.quantity).to.eql(Number(v("kettle_qty")));
            pm.expect(kettle.seller_id).to.eql(v("seller1_id"));
            pm.expect(hp.quantity).to.eql(Number(v("hp_qty")));
            pm.expect(hp.seller_id).to.eql(v("seller2_id"));
        });
        pm.test("the history starts with `placed`", () => {
            pm.expect(body.status_history[0].trigger).to.eql("placed");
            pm.expect(body.status_history[0].status).to.eql("pending");
        });
        pm.collectionVariables.set("order_id", body.id);
        pm.collectionVariables.set("order_total", body.total_amount);
    """]),
    req("4.2 Retry with the same Idempotency-Key", "POST", svc("order", "/orders"),
        token="buyer_access_token", body=FROM_CART, headers={"Idempotency-Key": "{{order_key}}"},
        tests=[status_is(202), """
        pm.test("the same order, not a second one", () => {
            pm.expect(body.id).to.eql(v("order_id"));
            pm.expect(body.total_amount).to.eql(v("order_total"));
        });
    """], description="Same key and same body: the answer is the order the key placed, as it "
                      "is now (it may already have moved on from `pending`)."),
    poll_until_paid("4.3 Poll the order until confirmed and captured", "order_id", more="""
            pm.test("no cancel reason, no deadline once paid", () => {
                pm.expect(body.cancel_reason).to.eql(null);
                pm.expect(body.payment_deadline, "no deadline once paid").to.eql(null);
            });
            pm.test("history: pending → awaiting_payment → confirmed, then the capture", () => {
                const applied = body.status_history.filter((h) => !h.ignored);
                const statuses = applied.map((h) => h.status);
                const triggers = applied.map((h) => h.trigger);
                pm.expect(statuses[0]).to.eql("pending");
                pm.expect(statuses.indexOf("awaiting_payment")).to.be.above(0);
                pm.expect(statuses.indexOf("confirmed")).to.be.above(statuses.indexOf("awaiting_payment"));
                pm.expect(triggers).to.include.members(["placed", "InventoryReserved", "PaymentAuthorized", "PaymentCaptured"]);
            });
            """),
    req("4.4 Poll the cart until the bought lines are gone", "GET", svc("cart", "/cart"),
        token="buyer_access_token", prerequest=POLL_WAIT,
        tests=[poll(
            setup="""
            const bought = [v("kettle_1l_sku_id"), v("hp_sku_id")];
            const left = (body.items || []).filter((l) => bought.includes(l.sku_id));
            """,
            until="left.length === 0", tries=40,
            then="""
            pm.test("the bought lines left the cart (consumer of OrderConfirmed)", () => {
                pm.expect(left).to.be.empty;
                pm.expect(body.items, "the cart held only those lines").to.be.empty;
                pm.expect(body.item_count).to.eql(0);
            });
            """)]),
    req("4.5 Kettle stock after the order", "GET",
        svc("catalog", "/products/slug/steel-kettle"), prerequest=POLL_WAIT,
        tests=[poll(
            setup="""
            const sku = (body.skus || []).find((s) => s.id === v("kettle_1l_sku_id")) || {};
            const expected = Number(v("kettle_1l_available")) - Number(v("kettle_qty"));
            """,
            until="sku.available === expected", tries=40,
            then="""
            pm.test("KETTLE-1L available fell by the units bought (vs. chapter 2)", () => {
                pm.expect(sku.available).to.eql(expected);
            });
            """)]),
])

# ---------------------------------------------------------------------------------------------
# Chapter 5: cancel and refund
# ---------------------------------------------------------------------------------------------

CANCEL_NOTE = "Changed my mind (Postman walkthrough)"

cancel = folder("5. Cancel and refund", """
    A second order (an `items` body this time): one KETTLE-2L paid with `tok_visa`. Once it is
    confirmed and captured the buyer cancels it: the order is `cancelled` at once
    (`buyer_requested`), payment refunds (`payment_status: refunded`) and the catalog puts the
    committed unit back on the shelf (KETTLE-2L `available` is what it was before the order).
    A second cancel is refused with 409.
""", [
    req("5.1 Kettle stock before the order", "GET",
        svc("catalog", "/products/slug/steel-kettle"), tests=[status_is(200), """
        const s2 = (body.skus || []).find((s) => s.id === v("kettle_2l_sku_id"));
        pm.test("KETTLE-2L is in stock", () => pm.expect(s2.available).to.be.at.least(1));
        if (s2) {
            pm.collectionVariables.set("kettle_2l_available_before", s2.available);
            pm.collectionVariables.set("kettle_2l_price", s2.price);
        }
    """]),
    req("5.2 Place an order of one KETTLE-2L", "POST", svc("order", "/orders"),
        token="buyer_access_token", headers={"Idempotency-Key": "{{order2_key}}"},
        body={"items": [{"sku_id": "{{kettle_2l_sku_id}}", "quantity": 1}],
              "shipping_address": ADDRESS, "payment_method": "tok_visa"},
        prerequest=fresh_key("order2_key"), tests=[status_is(202), """
        pm.test("pending, one line at the catalog's price", () => {
            pm.expect(body.status).to.eql("pending");
            pm.expect(body.items).to.have.lengthOf(1);
            pm.expect(parseFloat(body.total_amount)).to.eql(parseFloat(v("kettle_2l_price")));
        });
        pm.collectionVariables.set("order2_id", body.id);
    """]),
    poll_until_paid("5.3 Poll the second order until confirmed and captured", "order2_id"),
    req("5.4 Cancel the second order", "POST", svc("order", "/orders/{{order2_id}}/cancel"),
        token="buyer_access_token", body={"reason": CANCEL_NOTE}, tests=[status_is(202), f"""
        pm.test("cancelled at once, as the buyer's request, with the note kept", () => {{
            pm.expect(body.status).to.eql("cancelled");
            pm.expect(body.cancel_reason).to.eql("buyer_requested");
            pm.expect(body.cancel_note).to.eql("{CANCEL_NOTE}");
            const last = body.status_history[body.status_history.length - 1];
            pm.expect(last.trigger).to.eql("cancel");
            pm.expect(last.reason).to.eql("buyer_requested");
        }});
    """]),
    req("5.5 Poll the second order until refunded", "GET",
        svc("order", "/orders/{{order2_id}}"), token="buyer_access_token", prerequest=POLL_WAIT,
        tests=[poll(
            until='body.payment_status === "refunded"',
            then="""
            pm.test("cancelled and refunded", () => {
                pm.expect(body.status).to.eql("cancelled");
                pm.expect(body.payment_status).to.eql("refunded");
                pm.expect(body.status_history.map((h) => h.trigger)).to.include("PaymentRefunded");
            });
            """)]),
    req("5.6 Kettle stock back after the cancel", "GET",
        svc("catalog", "/products/slug/steel-kettle"), prerequest=POLL_WAIT,
        tests=[poll(
            setup="""
            const s2 = (body.skus || []).find((s) => s.id === v("kettle_2l_sku_id")) || {};
            const before = Number(v("kettle_2l_available_before"));
            """,
            until="s2.available === before", tries=40,
            then="""
            pm.test("KETTLE-2L available is back to its value before the order", () => {
                pm.expect(s2.available).to.eql(before);
            });
            """)]),
    req("5.7 Cancel it again", "POST", svc("order", "/orders/{{order2_id}}/cancel"),
        token="buyer_access_token", body={"reason": "twice"},
        tests=[error_is(409, "ORDER_NOT_CANCELLABLE", """
pm.test("the details name the order's status", () => {
    pm.expect(body.error.details.status).to.eql("cancelled");
});""")]),
])

# ---------------------------------------------------------------------------------------------
# Chapter 6: failures
# ---------------------------------------------------------------------------------------------

failures = folder("6. Failures", """
    - A card the mock gateway declines (`tok_decline`): the order is placed (202), the catalog
      reserves, payment's authorization is declined (`card_declined`) and the order ends
      `cancelled` with `cancel_reason: payment_failed` and `payment_status: failed`; the payment
      has no ledger postings.
    - Too many units: placement asks the catalog's batch lookup first and refuses lines it would
      not sell now, so ordering one unit more than TABLE-OAK has answers 422
      `ORDER_LINES_UNAVAILABLE` naming the line (`insufficient_stock`) and no order is made.
      (An order cancelled with `inventory_unavailable` happens only when stock runs out between
      that lookup and the reservation: a race this walkthrough cannot stage.)
    - No `Idempotency-Key`: 400 `IDEMPOTENCY_KEY_REQUIRED`.
    - The chapter-4 key with another body: 422 `IDEMPOTENCY_KEY_REUSED` naming that order.
""", [
    req("6.1 Place an order paid with a declined card", "POST", svc("order", "/orders"),
        token="buyer_access_token", headers={"Idempotency-Key": "{{declined_key}}"},
        body={"items": [{"sku_id": "{{kettle_1l_sku_id}}", "quantity": 1}],
              "shipping_address": ADDRESS, "payment_method": "tok_decline"},
        prerequest=fresh_key("declined_key"), tests=[status_is(202), """
        pm.test("placed and pending: the card is only tried later, by the saga", () => {
            pm.expect(body.status).to.eql("pending");
            pm.expect(body.payment_method).to.eql("tok_decline");
        });
        pm.collectionVariables.set("declined_order_id", body.id);
    """]),
    req("6.2 Poll the declined order until it ends", "GET",
        svc("order", "/orders/{{declined_order_id}}"), token="buyer_access_token",
        prerequest=POLL_WAIT, tests=[poll(
            until='["cancelled", "confirmed"].includes(body.status)',
            then="""
            pm.test("cancelled because the payment failed", () => {
                pm.expect(body.status).to.eql("cancelled");
                pm.expect(body.payment_status).to.eql("failed");
                pm.expect(body.cancel_reason).to.eql("payment_failed");
            });
            pm.test("the history names the event and the reason", () => {
                const entry = body.status_history.find((h) => h.status === "cancelled" && !h.ignored);
                pm.expect(entry.trigger).to.eql("PaymentFailed");
                pm.expect(entry.reason).to.eql("payment_failed");
            });
            """)]),
    req("6.3 The declined payment", "GET", svc("payment", "/payments/{{declined_order_id}}"),
        token="buyer_access_token", tests=[status_is(200), """
        pm.test("failed: card_declined, one declined authorization, nothing posted", () => {
            pm.expect(body.order_id).to.eql(v("declined_order_id"));
            pm.expect(body.status).to.eql("failed");
            pm.expect(body.failure_reason).to.eql("card_declined");
            pm.expect(body.ledger).to.be.empty;
            const auth = body.attempts.filter((a) => a.operation === "authorize");
            pm.expect(auth.map((a) => a.outcome)).to.include("declined");
        });
    """], description="The buyer may read their own payment (owner or admin)."),
    req("6.4 Oak side table stock", "GET", svc("catalog", "/products/slug/oak-side-table"),
        tests=[status_is(200), """
        const oak = (body.skus || []).find((s) => s.sku_code === "TABLE-OAK");
        pm.test("TABLE-OAK is there, with fewer than 99 units (a line holds at most 99)", () => {
            pm.expect(oak, "TABLE-OAK").to.be.an("object");
            pm.expect(oak.available).to.be.below(99);
        });
        if (oak) {
            pm.collectionVariables.set("oak_sku_id", oak.id);
            pm.collectionVariables.set("oak_available", oak.available);
            pm.collectionVariables.set("oak_order_qty", oak.available + 1);
        }
    """]),
    req("6.5 Order one unit more than available", "POST", svc("order", "/orders"),
        token="buyer_access_token", headers={"Idempotency-Key": "{{oversell_key}}"},
        body={"items": [{"sku_id": "{{oak_sku_id}}", "quantity": num("oak_order_qty")}],
              "shipping_address": ADDRESS, "payment_method": "tok_visa"},
        prerequest=fresh_key("oversell_key"),
        tests=[error_is(422, "ORDER_LINES_UNAVAILABLE", """
pm.test("refused at placement: the line is named as insufficient_stock", () => {
    const lines = body.error.details.lines;
    pm.expect(lines).to.have.lengthOf(1);
    pm.expect(lines[0].sku_id).to.eql(v("oak_sku_id"));
    pm.expect(lines[0].reason).to.eql("insufficient_stock");
    pm.expect(lines[0].requested).to.eql(Number(v("oak_order_qty")));
    pm.expect(lines[0].available).to.eql(Number(v("oak_available")));
});""")]),
    req("6.6 Place an order without an Idempotency-Key", "POST", svc("order", "/orders"),
        token="buyer_access_token",
        body={"items": [{"sku_id": "{{kettle_1l_sku_id}}", "quantity": 1}],
              "shipping_address": ADDRESS, "payment_method": "tok_visa"},
        tests=[error_is(400, "IDEMPOTENCY_KEY_REQUIRED")]),
    req("6.7 Reuse the chapter-4 key for another order", "POST", svc("order", "/orders"),
        token="buyer_access_token", headers={"Idempotency-Key": "{{order_key}}"},
        body={"items": [{"sku_id": "{{kettle_1l_sku_id}}", "quantity": 1}],
              "shipping_address": ADDRESS, "payment_method": "tok_visa"},
        tests=[error_is(422, "IDEMPOTENCY_KEY_REUSED", """
pm.test("the details name the order that key placed", () => {
    pm.expect(body.error.details.order_id).to.eql(v("order_id"));
});""")]),
])

# ---------------------------------------------------------------------------------------------
# Chapter 7: sellers
# ---------------------------------------------------------------------------------------------

SELLER_VIEW = """
pm.test("a seller's view: only their own lines and subtotal, no buyer-only fields", () => {
    pm.expect(body.items).to.not.be.empty;
    body.items.forEach((i) => pm.expect(i.seller_id).to.eql(v("SELLER_id")));
    const sum = body.items.reduce((acc, i) => acc + parseFloat(i.line_total), 0);
    pm.expect(parseFloat(body.subtotal)).to.be.closeTo(sum, 0.001);
    ["total_amount", "payment_method", "buyer_id", "status_history"].forEach((field) =>
        pm.expect(body, field).to.not.have.property(field));
});
"""

sellers = folder("7. Seller", """
    The chapter-4 order has a seller1 line (KETTLE-1L) and a seller2 line (HP-BLK). Each seller
    sees the order with only their own lines, and ships them; the order is `shipped` once the
    last line is, and the buyer confirms delivery.

    Then each seller puts back on the shelf the units this run sold (`POST /skus/{id}/stock`,
    a delta), so the walkthrough can run again and again on one seeded stack. The owner's view
    of a product shows the shelf and held counters the public does not see.
""", [
    login("7.1 Log in as seller1", "seller1", "{{seed_password}}", "seller1_access_token"),
    req("7.2 seller1's orders", "GET", svc("order", "/orders/seller/me?limit=100"),
        token="seller1_access_token", tests=[status_is(200), """
        const mine = (body.items || []).find((o) => o.id === v("order_id"));
        pm.test("the chapter-4 order is listed, confirmed, with only seller1's kettle line", () => {
            pm.expect(mine, "order " + v("order_id")).to.be.an("object");
            pm.expect(mine.status).to.eql("confirmed");
            pm.expect(mine.items).to.have.lengthOf(1);
            pm.expect(mine.items[0].sku_id).to.eql(v("kettle_1l_sku_id"));
            pm.expect(mine.items[0].seller_id).to.eql(v("seller1_id"));
            pm.expect(mine).to.not.have.property("total_amount");
        });
    """]),
    req("7.3 The order as seller1 sees it", "GET", svc("order", "/orders/{{order_id}}"),
        token="seller1_access_token",
        tests=[status_is(200), SELLER_VIEW.replace("SELLER_id", "seller1_id")]),
    req("7.4 seller1 ships their line", "POST", svc("order", "/orders/{{order_id}}/ship"),
        token="seller1_access_token", body={"tracking_number": "WALK-S1-{{order_id}}"},
        tests=[status_is(200), """
        pm.test("seller1's line is shipped with its tracking number", () => {
            body.items.forEach((i) => {
                pm.expect(i.shipped_at).to.be.a("string");
                pm.expect(i.tracking_number).to.eql("WALK-S1-" + v("order_id"));
            });
        });
        pm.test("the order stays confirmed: seller2's line is not shipped yet", () => {
            pm.expect(body.status).to.eql("confirmed");
        });
    """]),
    login("7.5 Log in as seller2", "seller2", "{{seed_password}}", "seller2_access_token"),
    req("7.6 The order as seller2 sees it", "GET", svc("order", "/orders/{{order_id}}"),
        token="seller2_access_token",
        tests=[status_is(200), SELLER_VIEW.replace("SELLER_id", "seller2_id"), """
        pm.test("only the HP-BLK line", () => {
            pm.expect(body.items).to.have.lengthOf(1);
            pm.expect(body.items[0].sku_id).to.eql(v("hp_sku_id"));
        });
    """]),
    req("7.7 seller2 ships their line", "POST", svc("order", "/orders/{{order_id}}/ship"),
        token="seller2_access_token", body={"tracking_number": "WALK-S2-{{order_id}}"},
        tests=[status_is(200), """
        pm.test("the last line shipped: the order is shipped", () => {
            pm.expect(body.status).to.eql("shipped");
            body.items.forEach((i) => pm.expect(i.shipped_at).to.be.a("string"));
        });
    """]),
    req("7.8 The buyer confirms delivery", "POST", svc("order", "/orders/{{order_id}}/deliver"),
        token="buyer_access_token", tests=[status_is(200), """
        pm.test("delivered, still captured", () => {
            pm.expect(body.status).to.eql("delivered");
            pm.expect(body.payment_status).to.eql("captured");
            pm.expect(body.status_history.map((h) => h.trigger)).to.include.members(["ship", "deliver"]);
        });
    """]),
    req("7.9 The kettle as its owner sees it", "GET",
        svc("catalog", "/products/slug/steel-kettle"), token="seller1_access_token",
        tests=[status_is(200), """
        const s1 = (body.skus || []).find((s) => s.id === v("kettle_1l_sku_id"));
        pm.test("the owner also sees the shelf and held counters", () => {
            pm.expect(s1.stock_quantity).to.be.a("number");
            pm.expect(s1.reserved_quantity).to.be.a("number");
            pm.expect(s1.available).to.eql(s1.stock_quantity - s1.reserved_quantity);
        });
        if (s1) { pm.collectionVariables.set("kettle_1l_stock_before", s1.stock_quantity); }
    """]),
    req("7.10 seller1 puts back the kettles sold", "POST",
        svc("catalog", "/skus/{{kettle_1l_sku_id}}/stock"), token="seller1_access_token",
        body={"delta": num("kettle_qty")}, tests=[status_is(200), """
        pm.test("the shelf has the units back", () => {
            pm.expect(body.stock_quantity)
                .to.eql(Number(v("kettle_1l_stock_before")) + Number(v("kettle_qty")));
        });
    """]),
    req("7.11 seller2 puts back the headphones sold", "POST",
        svc("catalog", "/skus/{{hp_sku_id}}/stock"), token="seller2_access_token",
        body={"delta": num("hp_qty")}, tests=[status_is(200), """
        pm.test("the owner's answer carries the counters", () => {
            pm.expect(body.id).to.eql(v("hp_sku_id"));
            pm.expect(body.stock_quantity).to.be.a("number");
            pm.expect(body.available).to.be.at.least(Number(v("hp_qty")));
        });
    """]),
])

# ---------------------------------------------------------------------------------------------
# Chapter 8: admin
# ---------------------------------------------------------------------------------------------

POSTINGS_BALANCED = """
pm.test("every posting balances (debits = credits)", () => {
    body.ledger.forEach((p) => {
        const sum = (dir) => p.entries.filter((e) => e.direction === dir)
            .reduce((acc, e) => acc + parseFloat(e.amount), 0);
        pm.expect(sum("debit"), p.kind).to.be.closeTo(sum("credit"), 0.0001);
    });
});
"""

admin = folder("8. Admin", """
    As the admin: the ledger's trial balance (debits equal credits in every currency), the
    reconciliation of every payment's state against its postings (no mismatch), the chapter-4
    payment (captured, with its authorization and capture postings, seller payables credited)
    and the refunded chapter-5 one; seller1's balance (what the platform owes them); the catalog's
    reservations of both orders (committed; restocked) and the conservation audit of KETTLE-1L.
""", [
    login("8.1 Log in as admin", "admin", "{{seed_password}}", "admin_access_token"),
    req("8.2 Trial balance", "GET", svc("payment", "/ledger/trial-balance"),
        token="admin_access_token", tests=[status_is(200), """
        pm.test("balanced in every currency, USD among them", () => {
            pm.expect(body.balanced).to.eql(true);
            pm.expect(body.currencies.map((c) => c.currency)).to.include("USD");
            body.currencies.forEach((c) => {
                pm.expect(c.balanced, c.currency).to.eql(true);
                pm.expect(parseFloat(c.debits)).to.eql(parseFloat(c.credits));
            });
        });
    """]),
    req("8.3 Reconciliation", "GET", svc("payment", "/ledger/reconciliation"),
        token="admin_access_token", tests=[status_is(200), """
        pm.test("every payment's postings match its state: no mismatches", () => {
            pm.expect(body.mismatches).to.be.an("array").that.is.empty;
            pm.expect(body.payments_checked).to.be.at.least(3);
        });
    """]),
    req("8.4 The chapter-4 payment", "GET", svc("payment", "/payments/{{order_id}}"),
        token="admin_access_token", tests=[status_is(200), """
        pm.test("captured, for the order's total", () => {
            pm.expect(body.order_id).to.eql(v("order_id"));
            pm.expect(body.status).to.eql("captured");
            pm.expect(parseFloat(body.amount)).to.eql(parseFloat(v("order_total")));
            pm.expect(body.currency).to.eql("USD");
        });
        pm.test("postings: authorization, then capture", () => {
            pm.expect(body.ledger.map((p) => p.kind)).to.eql(["authorization", "capture"]);
        });
        pm.test("the capture credits both sellers' payables", () => {
            const capture = body.ledger.find((p) => p.kind === "capture");
            const credited = capture.entries.filter((e) => e.direction === "credit").map((e) => e.account);
            pm.expect(credited).to.include.members([
                `seller_payable:${v("seller1_id")}:USD`, `seller_payable:${v("seller2_id")}:USD`]);
        });
        pm.test("the gateway authorized and captured", () => {
            const ok = body.attempts.filter((a) => a.outcome === "succeeded").map((a) => a.operation);
            pm.expect(ok).to.include.members(["authorize", "capture"]);
        });
    """, POSTINGS_BALANCED]),
    req("8.5 The chapter-5 payment", "GET", svc("payment", "/payments/{{order2_id}}"),
        token="admin_access_token", tests=[status_is(200), """
        pm.test("refunded: authorization, capture, refund", () => {
            pm.expect(body.status).to.eql("refunded");
            pm.expect(body.ledger.map((p) => p.kind)).to.eql(["authorization", "capture", "refund"]);
        });
    """, POSTINGS_BALANCED]),
    req("8.6 seller1's balance", "GET", svc("payment", "/payments/seller/me/balance"),
        token="seller1_access_token", tests=[status_is(200), """
        const usd = (body.accounts || []).find((a) =>
            a.code === `seller_payable:${v("seller1_id")}:USD`);
        pm.test("seller1 is owed a positive USD amount", () => {
            pm.expect(body.seller_id).to.eql(v("seller1_id"));
            pm.expect(usd, "seller_payable USD").to.be.an("object");
            pm.expect(parseFloat(usd.balance)).to.be.above(0);
        });
    """], description="As seller1 (the route is SELLER-only): the payable is seller1's own."),
    req("8.7 Reservations of the chapter-4 order", "GET",
        svc("catalog", "/inventory/reservations/{{order_id}}"), token="admin_access_token",
        tests=[status_is(200), """
        pm.test("both lines reserved, then committed", () => {
            pm.expect(body.items).to.have.lengthOf(2);
            body.items.forEach((r) => pm.expect(r.status, r.sku_id).to.eql("committed"));
            const kettle = body.items.find((r) => r.sku_id === v("kettle_1l_sku_id"));
            pm.expect(kettle.quantity).to.eql(Number(v("kettle_qty")));
        });
    """]),
    req("8.8 Reservations of the cancelled chapter-5 order", "GET",
        svc("catalog", "/inventory/reservations/{{order2_id}}"), token="admin_access_token",
        tests=[status_is(200), """
        pm.test("committed, then restocked by the cancel", () => {
            pm.expect(body.items).to.have.lengthOf(1);
            pm.expect(body.items[0].status).to.eql("restocked");
        });
    """]),
    req("8.9 Stock audit of KETTLE-1L", "GET",
        svc("catalog", "/inventory/audit?sku_id={{kettle_1l_sku_id}}"), token="admin_access_token",
        tests=[status_is(200), """
        pm.test("stock is conserved: initial + adjustments = available + reserved + sold", () => {
            pm.expect(body.consistent).to.eql(true);
            pm.expect(body.checked).to.eql(1);
            pm.expect(body.items[0].sku_code).to.eql("KETTLE-1L");
        });
    """]),
])

# ---------------------------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------------------------

CHAPTERS = [identity, browse, cart, order, cancel, failures, sellers, admin]

DESCRIPTION = """
Koupang, the whole story against the local stack (`make up` seeds it): register and log in,
browse, fill the cart, order it and watch the saga finish, cancel with a refund, failures,
the sellers' side and the admin's ledger.

Run it headless with `make walkthrough` (scripts/walkthrough.sh), or from the repository root:

    postman/node_modules/.bin/newman run postman/koupang.postman_collection.json -e postman/local.postman_environment.json

Run the folders in order: later chapters use what earlier ones captured (collection variables).
Asynchronous steps poll: the request re-runs itself (`pm.execution.setNextRequest`) until its
condition holds, 500 ms apart: at most 120 tries for an order, 40 for the cart or the stock.

Generated by `postman/build.py`; edit that, not this file.
"""


def captured_variables(items):
    """Every collection variable a script sets, in order of first appearance."""
    names = []
    for chapter in items:
        for item in chapter["item"]:
            for event in item["event"]:
                source = "\n".join(event["script"]["exec"])
                for name in re.findall(r'collectionVariables\.set\("(\w+)"', source):
                    if name not in names and name not in CONSTANTS:
                        names.append(name)
    return names


def collection():
    variables = [{"key": k, "value": value, "type": "string", "description": doc}
                 for k, (value, doc) in CONSTANTS.items()]
    variables += [{"key": k, "value": "", "type": "string"} for k in captured_variables(CHAPTERS)]
    return {
        "info": {
            "_postman_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "koupang/walkthrough")),
            "name": "Koupang walkthrough",
            "description": textwrap.dedent(DESCRIPTION).strip(),
            "schema": SCHEMA,
        },
        "auth": {"type": "noauth"},
        "item": CHAPTERS,
        "variable": variables,
    }


def environment():
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "koupang/local-environment")),
        "name": "Koupang local",
        "values": [{"key": k, "value": value, "enabled": True,
                    "type": "secret" if k == "seed_password" else "default"}
                   for k, value in ENVIRONMENT.items()],
        "_postman_variable_scope": "environment",
    }


def write(name, data):
    path = HERE / name
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    write("koupang.postman_collection.json", collection())
    write("local.postman_environment.json", environment())
