-- Product search: the query builder and the indexes that keep sorted browsing and keyset pages cheap.

-- The prefix tsquery of the word being typed: its stemmed lexeme ('chee':*, 'appl':* for "apples"); a stop word
-- has no stem, so it is kept as typed ("the" → 'the':*, for thermos). `|| ':*'` is appended to PostgreSQL's
-- own text of plainto_tsquery, which always ends with a quoted lexeme, so user text never becomes tsquery
-- syntax.
CREATE FUNCTION search_prefix_tsquery(prefix text) RETURNS tsquery
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN numnode(stemmed) > 0 THEN (stemmed::text || ':*')::tsquery
                WHEN numnode(as_typed) > 0 THEN (as_typed::text || ':*')::tsquery
                ELSE ''::tsquery END
      FROM (SELECT plainto_tsquery('english', coalesce(prefix, '')) AS stemmed,
                   plainto_tsquery('simple', coalesce(prefix, '')) AS as_typed) AS parts
$$;

-- The planner's estimate of how many of the current tenant's products a full-text query matches: its row
-- estimate for the tenant's largest hash partition (a random sample of the catalog, with the most common
-- lexemes ANALYZE keeps for it), scaled to all of them; NULL before the products were analyzed. Search uses it
-- to choose how to look up a word being typed and how to sort (nutrimatch.search.query). Planning one
-- partition costs ~0.3 ms. SECURITY DEFINER: the application role may not read the partitions (so the tenant
-- is the transaction's, never a parameter); VOLATILE: EXPLAIN requires it.
CREATE FUNCTION search_match_estimate(query tsquery) RETURNS real
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_catalog
AS $$
DECLARE
    vendor_table regclass := to_regclass(vendor_partition_name('products', app_vendor_id()));
    sample regclass;
    sample_rows real;
    catalog_rows real;
    plan json;
BEGIN
    SELECT sum(greatest(c.reltuples, 0)) INTO catalog_rows
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = vendor_table;
    SELECT c.oid, c.reltuples INTO sample, sample_rows
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = vendor_table
     ORDER BY c.reltuples DESC LIMIT 1;
    IF sample IS NULL OR sample_rows <= 0 OR numnode(query) = 0 THEN
        RETURN NULL;
    END IF;
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM %s WHERE search_tsv @@ %L::tsquery', sample, query)
       INTO plan;
    RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::real / sample_rows * catalog_rows;
END
$$;

-- The tsquery of a search box (nutrimatch.search.text splits the text): `words` through websearch_to_tsquery
-- (phrases, -negation, or; never fails on any input) and the word being typed as a prefix, both required or,
-- for "apple or chee", either. An empty part drops out of && and ||.
CREATE FUNCTION search_tsquery(words text, prefix text, prefix_is_alternative boolean DEFAULT false)
    RETURNS tsquery
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN prefix_is_alternative THEN w || p ELSE w && p END
      FROM websearch_to_tsquery('english', coalesce(words, '')) AS w, search_prefix_tsquery(prefix) AS p
$$;

-- The current tenant's products, for searching. Row-level security on products would make the planner refuse
-- every operator not marked LEAKPROOF as an index condition (tsvector @@, numeric comparisons, lower()): each
-- search would scan the vendor's whole catalog. This view applies the same tenant predicate as the policy, and
-- as it belongs to the tables' owner, RLS does not stack on top of it, so those operators reach the indexes.
-- Read-only for the application: a simple view is updatable, and writes must go through the policy.
CREATE VIEW tenant_products AS SELECT * FROM products WHERE vendor_id = app_vendor_id();
REVOKE ALL ON tenant_products FROM nutrimatch_app;
GRANT SELECT ON tenant_products TO nutrimatch_app;

-- Exact sort orders. An index on (key, id) serves an order in both directions and its keyset pages — (key, id) is
-- the cursor — as one range scan per partition, merged, instead of a sort of the vendor's catalog. Every index
-- also costs ingestion: building one after a bulk load of 2M products takes a few seconds, and maintaining it
-- row by row a few µs per row (bench/search.py prints the build time of each), so only these exist:
--   name, price       the default order of a browse, and the order shoppers ask for most;
--   category, price   browsing a category by price: prices follow categories, so walking the global price
--                     index for one category reads every cheaper product of the others first;
--   brand, name/price browsing a brand: names start with the brand and brands keep to a few categories, so
--                     walking the global indexes for one brand reads most of the catalog first (2 s at 2M).
-- Category by name needs none (names do not follow categories: the walk along the name index finds a page in a
-- few hundred products). Search text goes through the full-text index, other filters are checked on the rows
-- an index yields, and the nutrient orders sort a bounded set of matches in memory (nutrimatch.search.query).
CREATE INDEX products_name_sort_idx ON products (lower(name), id);
CREATE INDEX products_price_sort_idx ON products (price, id);
CREATE INDEX products_category_price_sort_idx ON products (category, price, id);
CREATE INDEX products_brand_name_sort_idx ON products (brand, lower(name), id);
CREATE INDEX products_brand_price_sort_idx ON products (brand, price, id);
