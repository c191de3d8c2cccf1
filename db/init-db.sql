-- Black Friday Lab: schema and deterministic seed data (PostgreSQL 15).
--
-- Used unchanged by the postgres container (docker-entrypoint-initdb.d), by
-- Kubernetes, by `npm run deps` (psql -v ON_ERROR_STOP=1 -f db/init-db.sql)
-- and by the tests. Rules for this file:
--   * plain SQL only (no psql meta-commands), so a driver can also send it as
--     one multi-statement query;
--   * never creates databases or roles: it works inside the current database
--     as the current user;
--   * idempotent: tables and indexes are created if missing, seed data is
--     inserted only into empty tables, so running it again is harmless and
--     fast;
--   * deterministic: every "random" choice is an integer hash of a row number
--     (never random()), so every environment gets the same catalogue and the
--     same order history.
--
-- Seed: 5,000 products (10 categories x 500, ~10% inactive) and 40,000
-- historical orders with ~119,000 order items. Orders are built around a
-- primary category, with a strong tie to one related category
-- (books <-> toys, clothing <-> beauty, home <-> garden, ...) and a popularity
-- skew inside each category, so "bought together" queries give a meaningful
-- ranking.

BEGIN;

-- No "already exists, skipping" notices on re-runs.
SET LOCAL client_min_messages = warning;
-- The seed queries look expensive to the planner; JIT-compiling them costs
-- more than running them.
SET LOCAL jit = off;

-- Serialise concurrent runs (several test files applying the schema at once):
-- CREATE ... IF NOT EXISTS alone is not safe against a concurrent creator.
-- The lock is released at COMMIT (or ROLLBACK on error).
DO $$ BEGIN PERFORM pg_advisory_xact_lock(72620231129); END $$;

-- ---------------------------------------------------------------- schema --

CREATE TABLE IF NOT EXISTS products (
    id          integer     PRIMARY KEY,
    sku         text        NOT NULL UNIQUE,
    name        text        NOT NULL,
    description text        NOT NULL,
    category    text        NOT NULL,
    price_cents integer     NOT NULL CHECK (price_cents > 0),
    currency    text        NOT NULL DEFAULT 'USD',
    is_active   boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The browse path (product-catalog GET /products?category=... ORDER BY id
-- LIMIT n) relies on this name. With id as its last column the index also
-- gives the order, so the planner picks it at any cost setting. An older
-- two-column definition is replaced.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_indexes
               WHERE schemaname = current_schema() AND indexname = 'idx_products_category_active'
                 AND indexdef NOT LIKE '%(category, is_active, id)%') THEN
        DROP INDEX idx_products_category_active;
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS idx_products_category_active
    ON products (category, is_active, id);

CREATE TABLE IF NOT EXISTS orders (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         text        NOT NULL,
    status          text        NOT NULL DEFAULT 'placed',
    total_cents     integer     NOT NULL,
    currency        text        NOT NULL DEFAULT 'USD',
    shipping_cents  integer     NOT NULL DEFAULT 0,
    payment_id      text,
    idempotency_key text        UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now()
);
-- Columns added after the first release, for databases created before them.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS shipping_cents integer NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN IF NOT EXISTS payment_id text;

CREATE INDEX IF NOT EXISTS idx_orders_user_id ON orders (user_id);

CREATE TABLE IF NOT EXISTS order_items (
    order_id         bigint  NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id       integer NOT NULL REFERENCES products (id),
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_cents integer NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

CREATE INDEX IF NOT EXISTS idx_order_items_product_id ON order_items (product_id);

-- ------------------------------------------------------- seed helpers --
-- Session-local (pg_temp) helpers: they vanish with the session and leave
-- nothing behind in the lab schema. Written as single-expression SQL
-- functions so the planner inlines them (hundreds of thousands of calls).

-- One round of a 32-bit integer mixer (Thomas Mueller's hash, 0x45d9f3b).
CREATE OR REPLACE FUNCTION pg_temp.lab_mix(x bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT ((x # (x >> 16)) * 73244475) & 4294967295 $$;

-- Deterministic hash of (n, salt), uniform in [0, 2^32).
CREATE OR REPLACE FUNCTION pg_temp.lab_hash(n bigint, salt integer) RETURNS bigint
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT pg_temp.lab_mix(pg_temp.lab_mix(((n * 1000003 + salt * 7919 + 12345) & 4294967295))) $$;

-- Popularity rank 0..499 inside a category, skewed towards 0 (rank 0 is
-- picked ~4.5% of the time, the median rank is ~125).
CREATE OR REPLACE FUNCTION pg_temp.lab_rank(h bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT least(499, floor(500 * power(h::float8 / 4294967296, 2))::integer) $$;

-- Product id of the product with popularity rank r (0..499) in category
-- number c (1..10). Category c owns ids (c-1)*500+1 .. c*500; the
-- permutation spreads popular products over that range.
CREATE OR REPLACE FUNCTION pg_temp.lab_product(c integer, r integer) RETURNS integer
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT (c - 1) * 500 + (r * 173 + c * 37) % 500 + 1 $$;

-- --------------------------------------------------------------- products --
-- 10 categories (numbered alphabetically) x 500 products: ids 1..500 are
-- automotive, 501..1000 beauty, ... 4501..5000 toys. Rows are written in id
-- order, so the table is physically ordered by category; the planner sees
-- that correlation and uses idx_products_category_active for
-- "WHERE category = $1 AND is_active LIMIT n" instead of a sequential scan.
-- Names are <adjective> <noun><variant> from small per-category arrays
-- (10 x 10 x 5 = 500 distinct names per category).

INSERT INTO products (id, sku, name, description, category, price_cents, currency, is_active, created_at)
SELECT p.id,
       upper(left(c.category, 3)) || '-' || lpad(p.id::text, 5, '0'),
       c.prefix || c.adjs[1 + p.j % 10] || ' ' || c.nouns[1 + (p.j / 10) % 10] || c.variants[1 + p.j / 100],
       c.prefix || c.adjs[1 + p.j % 10] || ' ' || c.nouns[1 + (p.j / 10) % 10] || c.variants[1 + p.j / 100]
           || ' from our ' || c.category || ' department. '
           || (ARRAY['A customer favourite, rated 4.5 out of 5.',
                     'Backed by a two-year warranty.',
                     'Ships within 24 hours.',
                     'Limited Black Friday stock.',
                     'Free returns within 30 days.'])[1 + pg_temp.lab_hash(p.id, 3) % 5],
       c.category,
       -- whole dollars in the category's range, priced at .99: 199..99999 cents
       (c.min_dollars + pg_temp.lab_hash(p.id, 1) % (c.max_dollars - c.min_dollars + 1))::integer * 100 + 99,
       'USD',
       pg_temp.lab_hash(p.id, 2) % 10 <> 0,                    -- ~10% inactive
       timestamptz '2023-01-01 00:00:00+00' + p.id * interval '97 minutes'
FROM (SELECT id, (id - 1) % 500 AS j, (id - 1) / 500 + 1 AS c
      FROM generate_series(1, 5000) AS id) AS p
JOIN (VALUES
    (1, 'automotive', '', 9, 299,
     ARRAY['All-Weather', 'LED', 'Heavy-Duty', 'Magnetic', 'Wireless', 'Premium', 'Universal', 'Digital', 'Portable', 'Microfiber'],
     ARRAY['Floor Mats', 'Headlight Bulbs', 'Jump Starter', 'Phone Mount', 'Dash Cam', 'Seat Covers', 'Tire Inflator', 'Car Charger', 'Wax Kit', 'Cargo Organizer'],
     ARRAY['', ' (Compact)', ' (SUV)', ' Kit', ' Pro']),
    (2, 'beauty', '', 2, 99,
     ARRAY['Hydrating', 'Matte', 'Organic', 'Vitamin C', 'Soothing', 'Radiant', 'Nourishing', 'Overnight', 'Mineral', 'Fragrance-Free'],
     ARRAY['Serum', 'Moisturizer', 'Lipstick', 'Face Mask', 'Shampoo', 'Conditioner', 'Sunscreen', 'Eye Cream', 'Cleanser', 'Body Lotion'],
     ARRAY['', ' 30ml', ' 50ml', ' 100ml', ' Travel Size']),
    (3, 'books', 'The ', 4, 59,
     ARRAY['Silent', 'Hidden', 'Last', 'Golden', 'Broken', 'Forgotten', 'Midnight', 'Endless', 'Crimson', 'Distant'],
     ARRAY['River', 'Garden', 'Kingdom', 'Letter', 'Voyage', 'Orchard', 'Empire', 'Harbor', 'Secret', 'Winter'],
     ARRAY['', ' (Paperback)', ' (Hardcover)', ' (Audiobook)', ': Collector''s Edition']),
    (4, 'clothing', '', 9, 249,
     ARRAY['Slim-Fit', 'Oversized', 'Classic', 'Linen', 'Wool', 'Organic Cotton', 'Waterproof', 'Vintage', 'Stretch', 'Quilted'],
     ARRAY['T-Shirt', 'Jeans', 'Hoodie', 'Jacket', 'Sweater', 'Chinos', 'Dress', 'Shorts', 'Parka', 'Cardigan'],
     ARRAY['', ' - Black', ' - Navy', ' - Olive', ' - Grey']),
    (5, 'electronics', '', 19, 999,
     ARRAY['Wireless', 'Smart', 'Portable', 'Compact', 'Ultra', 'Pro', 'Noise-Cancelling', '4K', 'Bluetooth', 'Rechargeable'],
     ARRAY['Headphones', 'Speaker', 'Monitor', 'Keyboard', 'Mouse', 'Webcam', 'Charger', 'Tablet', 'Smartwatch', 'Router'],
     ARRAY['', ' Mini', ' Plus', ' Max', ' Gen 2']),
    (6, 'garden', '', 4, 799,
     ARRAY['Solar', 'Ergonomic', 'Raised', 'Self-Watering', 'Heavy-Duty', 'Cedar', 'Hanging', 'Expandable', 'Cordless', 'Terracotta'],
     ARRAY['Planter', 'Pruning Shears', 'Hose', 'Bird Feeder', 'Lantern', 'Trowel', 'Compost Bin', 'Lawn Mower', 'Watering Can', 'Seed Kit'],
     ARRAY['', ' Small', ' Large', ' Bundle', ' Pro']),
    (7, 'grocery', '', 1, 39,
     ARRAY['Organic', 'Roasted', 'Spicy', 'Smoked', 'Gluten-Free', 'Wildflower', 'Dark', 'Sea-Salt', 'Artisan', 'Cold-Pressed'],
     ARRAY['Coffee Beans', 'Olive Oil', 'Granola', 'Honey', 'Pasta', 'Chocolate', 'Almonds', 'Tea', 'Hot Sauce', 'Crackers'],
     ARRAY['', ' 250g', ' 500g', ' 1kg', ' Family Pack']),
    (8, 'home', '', 7, 599,
     ARRAY['Ceramic', 'Bamboo', 'Stainless', 'Cast-Iron', 'Velvet', 'Minimalist', 'Rustic', 'Scandinavian', 'Glass', 'Oak'],
     ARRAY['Lamp', 'Cookware Set', 'Throw Blanket', 'Vase', 'Cutting Board', 'Bookshelf', 'Rug', 'Mirror', 'Kettle', 'Storage Box'],
     ARRAY['', ' (Small)', ' (Large)', ' - Set of 2', ' XL']),
    (9, 'sports', '', 9, 499,
     ARRAY['Carbon', 'Adjustable', 'Non-Slip', 'Insulated', 'Pro', 'Trail', 'Foldable', 'Weighted', 'Breathable', 'Aero'],
     ARRAY['Yoga Mat', 'Dumbbells', 'Running Shoes', 'Water Bottle', 'Tennis Racket', 'Bike Helmet', 'Jump Rope', 'Backpack', 'Football', 'Resistance Bands'],
     ARRAY['', ' Lite', ' Elite', ' Team Edition', ' 2.0']),
    (10, 'toys', '', 4, 149,
     ARRAY['Magnetic', 'Wooden', 'Remote-Control', 'Glow-in-the-Dark', 'Plush', 'Interactive', 'Musical', 'Stacking', 'Giant', 'Mini'],
     ARRAY['Puzzle', 'Dinosaur', 'Robot', 'Race Car', 'Train Set', 'Doll House', 'Blocks', 'Kite', 'Board Game', 'Teddy Bear'],
     ARRAY['', ' Junior', ' Deluxe', ' Starter Kit', ' Adventure Pack'])
) AS c (c, category, prefix, min_dollars, max_dollars, adjs, nouns, variants) ON c.c = p.c
WHERE NOT EXISTS (SELECT 1 FROM products)
ORDER BY p.id;

-- ------------------------------------------------------- order history --
-- Each order n (1..40000) has a primary category c and 2..4 items:
--   1. a product of c (popularity-skewed),
--   2. another product of c (distinct from item 1),
--   3. a product of the related category of c: 60% of the time the one with
--      the same popularity rank as item 1 (a "bundle"), else skewed,
--   4. half the time another product of c, else of some other category.
-- Duplicate picks (only possible for item 4) are merged into one line with
-- the summed quantity, so every order has 2..4 distinct products.
-- Only seeded when orders is empty: orders written by the lab are kept.

CREATE TEMP TABLE lab_seed_items ON COMMIT DROP AS
WITH o AS MATERIALIZED (
    -- every per-order choice, hashed once per order
    SELECT n,
           (1 + pg_temp.lab_hash(n, 10) % 10)::integer      AS c,     -- primary category
           (2 + pg_temp.lab_hash(n, 11) % 3)::integer       AS k,     -- number of items
           pg_temp.lab_rank(pg_temp.lab_hash(n, 12))        AS r1,
           pg_temp.lab_rank(pg_temp.lab_hash(n, 13))        AS r2,
           pg_temp.lab_hash(n, 14) % 100 < 60               AS bundle,
           pg_temp.lab_rank(pg_temp.lab_hash(n, 15))        AS r3,
           pg_temp.lab_hash(n, 16) % 2 = 0                  AS same4,
           pg_temp.lab_rank(pg_temp.lab_hash(n, 17))        AS r4,
           (pg_temp.lab_hash(n, 18) % 9)::integer           AS off4,
           pg_temp.lab_hash(n, 19)                          AS hq
    FROM generate_series(1, 40000) AS n
    WHERE NOT EXISTS (SELECT 1 FROM orders)
), picks AS (
    SELECT o.n,
           CASE s.slot
               WHEN 1 THEN pg_temp.lab_product(o.c, o.r1)
               WHEN 2 THEN pg_temp.lab_product(o.c, CASE WHEN o.r2 = o.r1 THEN (o.r1 + 1) % 500 ELSE o.r2 END)
               -- related category: automotive->electronics, beauty->clothing,
               -- books->toys, clothing->beauty, electronics->home,
               -- garden->home, grocery->home, home->garden, sports->clothing,
               -- toys->books
               WHEN 3 THEN pg_temp.lab_product((ARRAY[5, 4, 10, 2, 8, 8, 8, 6, 4, 3])[o.c],
                                               CASE WHEN o.bundle THEN o.r1 ELSE o.r3 END)
               ELSE CASE WHEN o.same4 THEN pg_temp.lab_product(o.c, o.r4)
                         ELSE pg_temp.lab_product((o.c + o.off4) % 10 + 1, o.r4) END
           END AS product_id,
           -- quantity: 1 (70%), 2 (20%), 3 (10%), from a per-slot shift of hq
           CASE WHEN (o.hq >> (s.slot * 4)) % 10 < 7 THEN 1
                WHEN (o.hq >> (s.slot * 4)) % 10 < 9 THEN 2
                ELSE 3 END AS quantity
    FROM o
    JOIN generate_series(1, 4) AS s (slot) ON s.slot <= o.k
)
SELECT picks.n AS order_id, picks.product_id, sum(picks.quantity)::integer AS quantity,
       p.price_cents AS unit_price_cents
FROM picks
JOIN products AS p ON p.id = picks.product_id
GROUP BY picks.n, picks.product_id, p.price_cents;

INSERT INTO orders (id, user_id, status, total_cents, currency, idempotency_key, created_at)
OVERRIDING SYSTEM VALUE
SELECT i.order_id,
       'seed-user-' || (1 + pg_temp.lab_hash(i.order_id, 1) % 8000),
       CASE WHEN i.order_id <= 38000 THEN 'delivered'
            WHEN i.order_id <= 39600 THEN 'shipped'
            ELSE 'placed' END,
       sum(i.quantity * i.unit_price_cents)::integer,
       'USD',
       NULL,
       -- one order every ~13 minutes through 2024, oldest first
       timestamptz '2024-01-01 00:00:00+00'
           + i.order_id * interval '13 minutes'
           + (pg_temp.lab_hash(i.order_id, 2) % 780) * interval '1 second'
FROM lab_seed_items AS i
GROUP BY i.order_id
ORDER BY i.order_id;

INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents)
SELECT order_id, product_id, quantity, unit_price_cents
FROM lab_seed_items
ORDER BY order_id, product_id;

-- Orders placed later with the default id continue after the highest id
-- (never moves the sequence backwards).
DO $$
DECLARE
    seq regclass := pg_get_serial_sequence('orders', 'id')::regclass;
    top bigint;
BEGIN
    SELECT max(id) INTO top FROM orders;
    IF top IS NOT NULL THEN
        PERFORM setval(seq, greatest(top, pg_sequence_last_value(seq)));
    END IF;
END $$;

COMMIT;

-- The lab's queries are small OLTP statements run thousands of times a second: a
-- parallel plan (worker processes started per query) or JIT compilation costs far
-- more CPU than it saves, and on two cores it starves everything else. Applies to
-- every new connection of this database, whatever it is called.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET max_parallel_workers_per_gather = 0', current_database());
    EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
END $$;

-- Fresh planner statistics (cheap at this size; also refreshes them on re-runs).
ANALYZE products;
ANALYZE orders;
ANALYZE order_items;
