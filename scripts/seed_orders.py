#!/usr/bin/env python3
"""Demo orders through the public API, so the order, seller and ledger views are not empty on
first look: buyer1 and buyer2 each get orders that end confirmed, shipped, delivered and
cancelled-and-refunded (paid with the mock gateway's `tok_visa`).

Safe to run again: every demo order has a fixed Idempotency-Key, so placing it again returns the
same order, and each step after it (ship, deliver, cancel) runs only when the order is still in
the state before that step.

Usage: seed_orders.py IDENTITY_URL CATALOG_URL ORDER_URL PASSWORD
"""
import sys
import time

import seed_api
from seed_api import call

identity, catalog, orders, password = sys.argv[1:5]


def login(user):
    return seed_api.login(identity, user, password)


def sku(slug, code):
    status, body = call("GET", f"{catalog}/api/v1/products/slug/{slug}")
    if status != 200:
        sys.exit(f"seed: product {slug} is missing ({status}); the catalog seed runs first")
    for s in body["skus"]:
        if s["sku_code"] == code:
            return s["id"]
    sys.exit(f"seed: product {slug} has no SKU {code}")


def wait_for(token, order_id, done, what, seconds=60):
    """Poll the order until `done(order)`; the saga runs asynchronously."""
    deadline = time.monotonic() + seconds
    while True:
        status, order = call("GET", f"{orders}/api/v1/orders/{order_id}", token)
        if status == 200 and done(order):
            return order
        if time.monotonic() > deadline:
            sys.exit(f"seed: order {order_id} not {what} after {seconds}s: {order}")
        time.sleep(0.2)


def settled(order):
    return order["status"] == "cancelled" or (
        order["status"] in ("confirmed", "shipped", "delivered") and order["payment_status"] == "captured")


ADDRESS = {"name": "Demo Buyer", "line1": "1 Market Street", "city": "Springfield",
           "postal_code": "12345", "country": "US"}

# (buyer, key, lines as (product slug, SKU code, quantity), the state it should end in)
DEMO = [
    ("buyer1", "demo-buyer1-confirmed", [("steel-kettle", "KETTLE-1L", 1), ("chef-knife", "KNIFE-20", 1)], "confirmed"),
    ("buyer1", "demo-buyer1-shipped", [("linen-t-shirt", "TEE-M", 2)], "shipped"),
    ("buyer1", "demo-buyer1-delivered", [("wireless-headphones", "HP-BLK", 1)], "delivered"),
    ("buyer1", "demo-buyer1-refunded", [("wool-scarf", "SCARF-GRY", 1)], "refunded"),
    ("buyer2", "demo-buyer2-delivered", [("oak-side-table", "TABLE-OAK", 1), ("bookshelf-speaker", "SPK-PAIR", 1)], "delivered"),
    ("buyer2", "demo-buyer2-confirmed", [("linen-t-shirt", "TEE-S", 1)], "confirmed"),
]

sellers = {}


def seller_token(name):
    if name not in sellers:
        sellers[name] = login(name)
    return sellers[name]


seller_ids = {}
for name in ("seller1", "seller2"):
    status, me = call("GET", f"{identity}/api/v1/users/me", seller_token(name))
    if status != 200:
        sys.exit(f"seed: cannot read {name}: {status} {me}")
    seller_ids[me["id"]] = name

made = []
for buyer, key, lines, goal in DEMO:
    token = login(buyer)
    items = [{"sku_id": sku(slug, code), "quantity": q} for slug, code, q in lines]
    status, order = call("POST", f"{orders}/api/v1/orders", token,
                         {"items": items, "shipping_address": ADDRESS, "payment_method": "tok_visa"},
                         {"Idempotency-Key": key})
    if status != 202:
        sys.exit(f"seed: placing {key}: {status} {order}")
    oid = order["id"]
    order = wait_for(token, oid, settled, "paid or cancelled")
    if order["status"] == "confirmed" and goal in ("shipped", "delivered"):
        for seller in sorted({seller_ids[i["seller_id"]] for i in order["items"]}):
            status, body = call("POST", f"{orders}/api/v1/orders/{oid}/ship", seller_token(seller),
                                {"tracking_number": f"DEMO-{oid[:8].upper()}"})
            if status not in (200, 202):
                sys.exit(f"seed: {seller} shipping {key}: {status} {body}")
        order = wait_for(token, oid, lambda o: o["status"] == "shipped", "shipped")
    if order["status"] == "shipped" and goal == "delivered":
        status, body = call("POST", f"{orders}/api/v1/orders/{oid}/deliver", token)
        if status not in (200, 202):
            sys.exit(f"seed: delivering {key}: {status} {body}")
        order = wait_for(token, oid, lambda o: o["status"] == "delivered", "delivered")
    if order["status"] == "confirmed" and goal == "refunded":
        status, body = call("POST", f"{orders}/api/v1/orders/{oid}/cancel", token,
                            {"reason": "changed my mind (demo)"})
        if status not in (200, 202):
            sys.exit(f"seed: cancelling {key}: {status} {body}")
    if goal == "refunded":
        order = wait_for(token, oid, lambda o: o["payment_status"] == "refunded", "refunded")
    made.append(f"{buyer}: {order['status']}/{order['payment_status']} {order['total_amount']} {order['currency']}")

print("orders: " + "; ".join(made))
