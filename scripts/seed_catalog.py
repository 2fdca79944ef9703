#!/usr/bin/env python3
"""Demo catalog through the public API: categories, brands, and active products with SKUs and
stock for seller1 and seller2. Safe to run again (existing slugs are left alone).

Usage: seed_catalog.py IDENTITY_URL CATALOG_URL PASSWORD
"""
import sys

import seed_api
from seed_api import call

identity, catalog, password = sys.argv[1:4]


def login(user):
    return seed_api.login(identity, user, password)


def all_pages(url):
    items, cursor = [], None
    while True:
        status, body = call("GET", url + (f"?limit=100&cursor={cursor}" if cursor else "?limit=100"))
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items


admin = login("admin")
categories = {c["slug"]: c["id"] for c in all_pages(f"{catalog}/api/v1/categories")}


def category(name, slug, parent=None):
    if slug not in categories:
        status, body = call("POST", f"{catalog}/api/v1/categories", admin,
                            {"name": name, "slug": slug, "parent_id": categories.get(parent)})
        if status != 201:
            sys.exit(f"seed: category {slug}: {status} {body}")
        categories[slug] = body["id"]
    return categories[slug]


for name, slug, parent in [
    ("Home", "home", None), ("Kitchen", "kitchen", "home"), ("Furniture", "furniture", "home"),
    ("Electronics", "electronics", None), ("Audio", "audio", "electronics"),
    ("Clothing", "clothing", None),
]:
    category(name, slug, parent)

brands = {b["slug"]: b["id"] for b in all_pages(f"{catalog}/api/v1/brands")}
for name, slug, cats in [("Acme", "acme", ["kitchen", "furniture"]), ("Sonora", "sonora", ["audio"]),
                         ("Threadly", "threadly", ["clothing"])]:
    if slug not in brands:
        status, body = call("POST", f"{catalog}/api/v1/brands", admin, {"name": name, "slug": slug})
        if status != 201:
            sys.exit(f"seed: brand {slug}: {status} {body}")
        brands[slug] = body["id"]
    for c in cats:
        call("PUT", f"{catalog}/api/v1/brands/{brands[slug]}/categories/{categories[c]}", admin)

PRODUCTS = {
    "seller1": [
        ("Steel Kettle", "steel-kettle", "kitchen", "acme", [("KETTLE-1L", "34.90", 40, {"size": "1 L"}), ("KETTLE-2L", "44.90", 25, {"size": "2 L"})]),
        ("Chef Knife", "chef-knife", "kitchen", "acme", [("KNIFE-20", "59.00", 30, {"blade": "20 cm"})]),
        ("Oak Side Table", "oak-side-table", "furniture", "acme", [("TABLE-OAK", "129.00", 8, {"wood": "oak"})]),
        ("Linen T-Shirt", "linen-t-shirt", "clothing", "threadly", [("TEE-S", "19.99", 50, {"size": "S"}), ("TEE-M", "19.99", 50, {"size": "M"}), ("TEE-L", "21.99", 40, {"size": "L"})]),
    ],
    "seller2": [
        ("Wireless Headphones", "wireless-headphones", "audio", "sonora", [("HP-BLK", "89.00", 20, {"colour": "black"}), ("HP-WHT", "89.00", 15, {"colour": "white"})]),
        ("Bookshelf Speaker", "bookshelf-speaker", "audio", "sonora", [("SPK-PAIR", "149.00", 10, {"pack": "pair"})]),
        ("Wool Scarf", "wool-scarf", "clothing", "threadly", [("SCARF-GRY", "29.50", 35, {"colour": "grey"})]),
    ],
}

# A wider shelf, so lists, filters and pages have something to show: each line is a product
# family (category, brand, seller, base price) made in several models with two or three SKUs.
FAMILIES = [
    ("Ceramic Mug", "kitchen", "acme", "seller1", 12.50, ["Classic", "Tall", "Espresso"], ("colour", ["white", "blue", "sage"])),
    ("Cast Iron Pan", "kitchen", "acme", "seller1", 39.00, ["20 cm", "24 cm", "28 cm"], ("finish", ["seasoned", "enamel"])),
    ("Cutting Board", "kitchen", "acme", "seller1", 24.00, ["Walnut", "Bamboo"], ("size", ["M", "L"])),
    ("Floor Lamp", "furniture", "acme", "seller1", 79.00, ["Arc", "Tripod", "Column"], ("shade", ["linen", "paper"])),
    ("Bar Stool", "furniture", "acme", "seller1", 65.00, ["Low", "High"], ("seat", ["oak", "black"])),
    ("Hoodie", "clothing", "threadly", "seller1", 45.00, ["Zip", "Pullover", "Heavyweight"], ("size", ["S", "M", "L"])),
    ("Chino Trousers", "clothing", "threadly", "seller2", 55.00, ["Slim", "Relaxed"], ("waist", ["30", "32", "34"])),
    ("Beanie", "clothing", "threadly", "seller2", 18.00, ["Ribbed", "Fisherman"], ("colour", ["grey", "navy", "rust"])),
    ("Earbuds", "audio", "sonora", "seller2", 59.00, ["Sport", "Studio", "Mini"], ("colour", ["black", "white"])),
    ("Turntable", "audio", "sonora", "seller2", 229.00, ["Belt", "Direct"], ("finish", ["walnut", "black"])),
    ("Portable Radio", "audio", "sonora", "seller2", 49.00, ["FM", "DAB+"], ("colour", ["red", "cream"])),
]
for name, cat, brand, seller, base, models, (attr, values) in FAMILIES:
    for i, model in enumerate(models):
        title = f"{model} {name}"
        slug = title.lower().replace(" ", "-").replace("+", "plus")
        skus = []
        for j, value in enumerate(values):
            code = f"{slug.upper()[:18]}-{value.upper()[:6]}".replace("-", "")[:24] + f"-{i}{j}"
            price = f"{base + 5 * i + (2 if j == len(values) - 1 else 0):.2f}"
            stock = 5 + (7 * i + 11 * j) % 40
            skus.append((code, price, stock, {attr: value}))
        PRODUCTS[seller].append((title, slug, cat, brand, skus))

created, kept = 0, []
for seller, products in PRODUCTS.items():
    token = login(seller)
    for name, slug, cat, brand, skus in products:
        # As the seller: their own drafts and archived products are found too.
        status, _ = call("GET", f"{catalog}/api/v1/products/slug/{slug}", token)
        if status == 200:
            continue
        status, body = call("POST", f"{catalog}/api/v1/products", token, {
            "name": name, "slug": slug, "description": f"{name}: demo product seeded by scripts/seed.sh",
            "category_id": categories[cat], "brand_id": brands[brand]})
        if status == 409:
            kept.append(slug)
            continue
        if status != 201:
            sys.exit(f"seed: product {slug}: {status} {body}")
        pid = body["id"]
        clash = False
        for code, price, stock, attrs in skus:
            status, body = call("POST", f"{catalog}/api/v1/products/{pid}/skus", token, {
                "sku_code": code, "price": price, "currency": "USD", "stock_quantity": stock, "attributes": attrs})
            if status == 409:
                # An earlier seed made this SKU and its product was changed since (renamed or
                # archived by hand, or by scripts/fuzz-api): that one stays as it is, and this new
                # product stays a draft, which the check above finds next time.
                clash = True
                break
            if status != 201:
                sys.exit(f"seed: sku {code}: {status} {body}")
        if clash:
            kept.append(slug)
            continue
        call("POST", f"{catalog}/api/v1/products/{pid}/images", token,
             {"url": f"https://images.koupang.local/{slug}.jpg", "alt_text": name})
        status, body = call("PATCH", f"{catalog}/api/v1/products/{pid}", token, {"status": "active"})
        if status != 200:
            sys.exit(f"seed: activating {slug}: {status} {body}")
        created += 1

print(f"catalog: {len(categories)} categories, {len(brands)} brands, {created} new products"
      + (f"; changed since they were seeded, left as they are: {', '.join(kept)}" if kept else ""))
