-- Every exact order has an index on (key, id), the nutrient orders included.
--
-- Without one, sorting the matches of a common word by a nutrient meant reading every match (1.5 µs each: "milk"
-- by protein read 362,000 products of 2M in 410 ms), so such searches were refused with 422 beyond 5,000 matches:
-- "chicken" by protein, "chocolate" by sugar. With the index, a search whose matches are too many to collect
-- sorts them band by band: the full-text index's matches ANDed with a range of the order's index, each band
-- bounded from a sample of the matches (nutrimatch.search.query). Each index costs a first load of 2M products
-- about three seconds to build (bench/search.py prints it) and a few µs a changed row.
CREATE INDEX products_calories_sort_idx ON products (calories, id);
CREATE INDEX products_protein_sort_idx ON products (protein_g, id);
CREATE INDEX products_sugar_sort_idx ON products (sugar_g, id);
CREATE INDEX products_sodium_sort_idx ON products (sodium_mg, id);
