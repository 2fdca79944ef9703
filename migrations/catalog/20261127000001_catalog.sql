-- Catalog: categories, brands, products, SKUs, images, and inventory (reservations and the stock
-- movements that let an auditor prove stock was conserved).

-- Trigram indexes make `name ILIKE '%term%'` searches fast; full-text handles whole words.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE categories (
    id uuid PRIMARY KEY,
    -- RESTRICT: a category with children cannot disappear from under them.
    parent_id uuid REFERENCES categories (id) ON DELETE RESTRICT,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    slug text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT categories_slug_key UNIQUE (slug),
    -- The code refuses moves under a descendant; this catches the one-step cycle cheaply.
    CONSTRAINT categories_not_own_parent CHECK (parent_id IS DISTINCT FROM id)
);
CREATE INDEX categories_parent_idx ON categories (parent_id);

CREATE TABLE brands (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    slug text NOT NULL,
    description text,
    logo_url text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT brands_slug_key UNIQUE (slug)
);
-- Two brands that differ only in case are the same brand to a shopper.
CREATE UNIQUE INDEX brands_name_key ON brands (lower(name));

CREATE TABLE brand_categories (
    brand_id uuid NOT NULL REFERENCES brands (id) ON DELETE CASCADE,
    category_id uuid NOT NULL REFERENCES categories (id) ON DELETE CASCADE,
    PRIMARY KEY (brand_id, category_id)
);
CREATE INDEX brand_categories_category_idx ON brand_categories (category_id);

CREATE TABLE products (
    id uuid PRIMARY KEY,
    seller_id uuid NOT NULL,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    slug text NOT NULL,
    description text CHECK (length(description) <= 10000),
    -- RESTRICT: deleting a category or brand that products use is refused, not silently cleared.
    category_id uuid REFERENCES categories (id) ON DELETE RESTRICT,
    brand_id uuid REFERENCES brands (id) ON DELETE RESTRICT,
    status text NOT NULL DEFAULT 'draft'
        CHECK (status IN ('draft', 'active', 'inactive', 'archived')),
    -- Every SKU of a product is sold in this one currency (set by the first SKU), so "price from"
    -- and price filters compare like with like.
    currency char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    -- Lowest price among the product's live, active SKUs; NULL when it has none (then it is not
    -- listed). Kept by the code in the transaction that changes a SKU.
    min_price numeric(19, 4) CHECK (min_price >= 0),
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', name), 'A') ||
        setweight(to_tsvector('simple', coalesce(description, '')), 'B')
    ) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
-- A slug names one live product; a deleted product's slug is free again.
CREATE UNIQUE INDEX products_slug_key ON products (slug) WHERE deleted_at IS NULL;
CREATE INDEX products_seller_idx ON products (seller_id, id DESC) WHERE deleted_at IS NULL;
-- The public listing reads only active, priced products; one index per sort order keeps each
-- keyset page an index range scan.
CREATE INDEX products_listing_newest_idx ON products (id DESC)
    WHERE status = 'active' AND deleted_at IS NULL AND min_price IS NOT NULL;
CREATE INDEX products_listing_price_idx ON products (min_price, id)
    WHERE status = 'active' AND deleted_at IS NULL AND min_price IS NOT NULL;
CREATE INDEX products_listing_name_idx ON products (lower(name), id)
    WHERE status = 'active' AND deleted_at IS NULL AND min_price IS NOT NULL;
CREATE INDEX products_category_idx ON products (category_id) WHERE deleted_at IS NULL;
CREATE INDEX products_brand_idx ON products (brand_id) WHERE deleted_at IS NULL;
CREATE INDEX products_search_idx ON products USING gin (search);
CREATE INDEX products_name_trgm_idx ON products USING gin (name gin_trgm_ops);

CREATE TABLE skus (
    id uuid PRIMARY KEY,
    product_id uuid NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    sku_code text NOT NULL CHECK (sku_code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    price numeric(19, 4) NOT NULL CHECK (price > 0),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    attributes jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(attributes) = 'object'),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    -- Units on the shelf, including the ones held for orders that are not paid yet.
    stock_quantity integer NOT NULL,
    -- Units held by reservations; maintained by the saga handlers only.
    reserved_quantity integer NOT NULL DEFAULT 0,
    -- Units that left the shelf for confirmed orders (minus restocks of cancelled ones).
    sold_quantity integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    -- The stock invariants of SPEC §7, held by the database whatever the code does: nothing is
    -- negative, and no more is held than is on the shelf (so nothing is ever oversold).
    CONSTRAINT skus_stock_nonnegative CHECK (stock_quantity >= 0),
    CONSTRAINT skus_reserved_within_stock
        CHECK (reserved_quantity >= 0 AND reserved_quantity <= stock_quantity),
    CONSTRAINT skus_sold_nonnegative CHECK (sold_quantity >= 0)
);
-- A code names one live SKU; a deleted SKU's code can be reused.
CREATE UNIQUE INDEX skus_sku_code_key ON skus (sku_code) WHERE deleted_at IS NULL;
CREATE INDEX skus_product_idx ON skus (product_id);

CREATE TABLE product_images (
    id uuid PRIMARY KEY,
    product_id uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    url text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
    alt_text text CHECK (length(alt_text) <= 300),
    sort_order integer NOT NULL DEFAULT 0,
    is_primary boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX product_images_product_idx ON product_images (product_id, sort_order, id);
-- At most one primary image per product.
CREATE UNIQUE INDEX product_images_one_primary ON product_images (product_id) WHERE is_primary;

-- One row per (order, SKU) the saga reserved. The primary key makes a second reservation of the
-- same line impossible, whatever a duplicate event does.
CREATE TABLE reservations (
    order_id uuid NOT NULL,
    sku_id uuid NOT NULL REFERENCES skus (id) ON DELETE RESTRICT,
    quantity integer NOT NULL CHECK (quantity > 0),
    -- held → committed → restocked, or held → released.
    status text NOT NULL DEFAULT 'held'
        CHECK (status IN ('held', 'committed', 'released', 'restocked')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, sku_id)
);
CREATE INDEX reservations_sku_held_idx ON reservations (sku_id) WHERE status = 'held';

-- Append-only history of every change to a SKU's stock_quantity or sold_quantity. The audit
-- re-derives the counters from it: initial + adjustments = stock + sold.
CREATE TABLE stock_movements (
    id bigserial PRIMARY KEY,
    sku_id uuid NOT NULL REFERENCES skus (id) ON DELETE RESTRICT,
    kind text NOT NULL CHECK (kind IN ('initial', 'adjustment', 'commit', 'restock')),
    -- Change of stock_quantity (commit: -q, restock: +q; sold moves the other way).
    delta integer NOT NULL,
    order_id uuid,
    actor_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stock_movements_order_kinds
        CHECK ((kind IN ('commit', 'restock')) = (order_id IS NOT NULL))
);
CREATE INDEX stock_movements_sku_idx ON stock_movements (sku_id);

-- History is evidence: it is never rewritten.
CREATE FUNCTION stock_movements_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'stock_movements rows are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER stock_movements_no_update BEFORE UPDATE OR DELETE ON stock_movements
    FOR EACH ROW EXECUTE FUNCTION stock_movements_immutable();
