-- The image path from SQL: ImageNet classes and embeddings of pictures.
-- (The photographs ship with Debian's python3-skimage; the image model is
-- the converted Keras ResNet-50 with real ImageNet weights.)
CREATE EXTENSION mmsa;

CREATE TABLE photos (name text, image bytea);
INSERT INTO photos
SELECT name, pg_read_binary_file('/usr/lib/python3/dist-packages/skimage/data/' || name)
FROM unnest(ARRAY['chelsea.png', 'coffee.png']) AS name;

SELECT p.name, c.rank, c.label, round(c.probability::numeric, 2) AS probability
FROM photos p, mmsa_image_classes(p.image, 2) c ORDER BY p.name, c.rank;

SELECT name, array_length(mmsa_image_embedding(image), 1) AS dims FROM photos ORDER BY name;

-- bad input is an ERROR with a SQLSTATE, never a crash
\set VERBOSITY sqlstate
SELECT mmsa_image_embedding('\x'::bytea);
SELECT mmsa_image_embedding('GIF89a not really'::bytea);
SELECT mmsa_image_embedding(substring(image from 1 for 1000)) FROM photos WHERE name = 'chelsea.png';
\set VERBOSITY default
SELECT mmsa_image_embedding('just some bytes'::bytea);

DROP TABLE photos;
DROP EXTENSION mmsa;
