-- The text path from SQL: tokens, ids and embeddings of posts.
-- (The test run points mmsa.model_dir at a small random-weight BERT with
-- the real vocabulary and a maximum length of 40.)
CREATE EXTENSION mmsa;

SELECT mmsa_wordpieces('How I feel today #legday #jelly #aching #gym');
SELECT mmsa_tokenize('How I feel today #legday #jelly #aching #gym');
SELECT mmsa_wordpieces('Crème brûlée at the café, naïve résumé!');
SELECT mmsa_wordpieces('東京の夜景 is beautiful tonight 😍');
SELECT mmsa_tokenize('');

-- long texts are truncated to the model's maximum length, [SEP] last
SELECT array_length(mmsa_tokenize(repeat('so happy ', 200)), 1) AS n_ids,
       (mmsa_tokenize(repeat('so happy ', 200)))[40] AS last_id;

-- one vector of hidden_size values per post
CREATE TABLE posts (id int, body text);
INSERT INTO posts VALUES (1, 'Best. Concert. EVER!!!'), (2, 'Poor @HarrisburgHeat getting crushed'), (3, NULL);
SELECT id, array_length(mmsa_text_embedding(body), 1) AS dims FROM posts ORDER BY id;

-- deterministic: the same text always gives the same vector
SELECT mmsa_text_embedding('Best. Concert. EVER!!!') = mmsa_text_embedding('Best. Concert. EVER!!!') AS same;

-- how the functions are marked
SELECT proname, provolatile, proparallel, proisstrict
FROM pg_proc WHERE proname LIKE 'mmsa\_%' ORDER BY proname;

-- settings live under the reserved mmsa. prefix
SELECT name, context FROM pg_settings WHERE name LIKE 'mmsa.%' ORDER BY name;
SET mmsa.no_such_setting = 1;

DROP TABLE posts;
DROP EXTENSION mmsa;
