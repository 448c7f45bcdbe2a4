-- The word being typed finds its products at every length, and a stop word typed after other words drops out.
--
-- A prefix was looked up as its own stem with :* ('chee':*). The stem of a word is often shorter than the word
-- (chocolate → chocol, organic → organ, vegetable → veget), and a prefix that has grown past it stems to
-- itself ('chocola':*), which no lexeme of the word starts with: "chocola" and "vegetab" found nothing while
-- "chocol" and "vegetable" did. Such a prefix is now also looked up as the exact lexemes it holds with its last 1
-- to 4 characters cut off, none shorter than 3, where the characters cut off could begin a suffix Snowball
-- strips: a vowel or y (-able, -ing, -ic, -ous, -y), the cut's last letter doubled (mapping → map, "mapp"), or
-- the start of -ful, -less, -ly, -ment, -ness, -tional. Without that condition "honeycr" found honey, "pear"
-- peas, "hamb" ham; it costs 7 of the 122,000 prefixes measured here. Over every prefix of 1,660 food words
-- (the demo catalog) and of 16,000 common English and technical words, 3.2 % and 8 % found nothing; 0.1 % and
-- 0.4 % now. Longer cuts gain little (-ization words); the rest are stems Snowball rewrites (baking →
-- bake); cuts to 2 characters would add 2-letter words for one more word ("add" → ad). A stem that is not a
-- prefix of the typed word (its y made i: "analy" → anali, where analysis → analysi, analyze → analyz) adds the
-- prefix as typed. The cost: at most five lexemes to look up in each partition instead of one, the added ones
-- (but the rare as-typed one) exact lookups, not ranges of lexemes. PL/pgSQL keeps the plan of the function for
-- the session: as an SQL function with subqueries it was planned again in each statement calling it, 0.7 ms a
-- search (0.03 ms now).
CREATE OR REPLACE FUNCTION search_prefix_tsquery(prefix text) RETURNS tsquery
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN (
    SELECT CASE WHEN numnode(stemmed) > 0
                THEN (stemmed::text || ':*')::tsquery
                     || CASE WHEN starts_with(as_typed::text, rtrim(stemmed::text, ''''))
                             THEN ''::tsquery ELSE (as_typed::text || ':*')::tsquery END
                     || coalesce(past_the_stem, ''::tsquery)
                WHEN numnode(as_typed) > 0 THEN (as_typed::text || ':*')::tsquery
                ELSE ''::tsquery END
      FROM (SELECT plainto_tsquery('english', coalesce(prefix, '')) AS stemmed,
                   plainto_tsquery('simple', coalesce(prefix, '')) AS as_typed,
                   (SELECT string_agg(plainto_tsquery('simple', kept)::text, ' | ')::tsquery
                      FROM generate_series(1, 4) AS cut,
                           LATERAL (SELECT lower(left(prefix, -cut)) AS kept, lower(right(prefix, cut)) AS tail) AS split
                     WHERE char_length(kept) >= 3
                       AND (tail ~ '^[aeiouy]' OR left(tail, 1) = right(kept, 1)
                            OR EXISTS (SELECT FROM unnest(ARRAY['ful', 'less', 'ly', 'ment', 'ness', 'tional']) AS suffix
                                        WHERE starts_with(suffix, tail)))) AS past_the_stem) AS parts);
END
$$;

-- The prefix query of the word being typed after `words` (websearch_to_tsquery's). A stop word has no stem: typed
-- alone it is looked up as typed ("the" finds thermos), but after words to look for ("salt and") it is most
-- likely a whole word on the way to the next one, and no product is indexed with it: it drops out, and the
-- words alone decide.
CREATE FUNCTION search_prefix_after_words(words tsquery, prefix text) RETURNS tsquery
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN numnode(plainto_tsquery('english', coalesce(prefix, ''))) = 0
                     AND querytree(words) NOT IN ('', 'T')
                THEN ''::tsquery ELSE search_prefix_tsquery(prefix) END
$$;

CREATE OR REPLACE FUNCTION search_tsquery(words text, prefix text, prefix_is_alternative boolean DEFAULT false)
    RETURNS tsquery
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN prefix_is_alternative THEN w || p ELSE w && p END
      FROM websearch_to_tsquery('english', coalesce(words, '')) AS w, search_prefix_after_words(w, prefix) AS p
$$;
