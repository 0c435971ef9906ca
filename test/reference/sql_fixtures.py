#!/usr/bin/python3
"""Fixtures for the SQL test suites (pg_regress and pgTAP).

Writes into OUT:
  model/text/            a random-weight BERT (PyTorch reference, seed 7) with
                         the real bert-base-uncased vocabulary: config.json,
                         model.safetensors, vocab.txt.  Test-only: it lives in
                         the test run's temporary folder and is never installed.
  missing-weights/text/  config.json and vocab.txt, no model.safetensors
  truncated/text/        model.safetensors cut in the middle of its data
  wrong-shape/text/      config.json that disagrees with one tensor's shape
  model/image            a link to the converted ImageNet ResNet-50
                         (weights/image, fetched by the build)
  no-int8/image, corrupt-int8/image, truncated-int8/image,
  corrupt-int8/text, truncated-int8/text
                         that ResNet-50 without its int8 weights, with a
                         byte of them changed, and with them cut short
  images/                the decoder's good and hostile test files
                         (make_test_images.py, with its manifest.json)
  no-ensemble/           the installed trained model (links to its text,
                         image and heads) with a model.json that describes
                         no ensemble
  posts/                 24 MVSA-Single val posts (posts.csv and <id>.jpg) and
                         one more whose image file is missing
  fixtures.sql           the functions fixture_trained_model_dir() and
                         fixture_plan(query, analyze), tables
                         fixture_posts (id, body, image_path) and
                         mvsa_predict and mvsa_predict_int8 (what `mmsa
                         predict` prints for them with the installed default
                         model, when there is one, at fp32 and at int8),
                         fixture_texts (body, ref_ids, ref_pooled),
                         fixture_image_classes (the `mmsa classify` top 5 of
                         photographs that ship with Debian's python3-skimage)
                         and fixture_settings, with the reference tokenizer's
                         ids and the reference model's pooled outputs.

Usage: sql_fixtures.py --out DIR [--vocab weights/text/vocab.txt] [--data ../shared/data]
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_reference  # noqa: E402
import bert_tokenizer_ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIMAGE_DATA = "/usr/lib/python3/dist-packages/skimage/data"

# Small, so the fixtures are quick, but with the real vocabulary and a short
# maximum length, so that truncation shows.
SQL_TEST_SHAPE = dict(vocab_size=30522, hidden_size=64, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=128,
                      max_position_embeddings=40, type_vocab_size=2)

HAND_WRITTEN_TEXTS = [
    "",
    "How I feel today #legday #jelly #aching #gym",
    "Crème brûlée at the café, naïve résumé!",
    "東京の夜景 is beautiful tonight 😍 http://t.co/xyz",
    "RT @user: I can't believe it's not butter!!! :-) <3",
    "ΟΔΥΣΣΕΥΣ was here, ß and İstanbul",
    "word " * 100,
    "a" * 150 + " supercalifragilisticexpialidocious",
]


def sql_literal(s):
    return "'" + s.replace("'", "''") + "'"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", default=os.path.join(ROOT, "weights", "text", "vocab.txt"))
    ap.add_argument("--data", default=os.environ.get(
        "MMSA_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data")))
    ap.add_argument("--cli", default=os.environ.get("MMSA_CLI", os.path.join(ROOT, "build", "mmsa")))
    ap.add_argument("--posts", type=int, default=40,
                    help="number of MVSA-Single train texts to add")
    ap.add_argument("--model", default=None,
                    help="sentiment model for mvsa_predict (default: pg_config's SHAREDIR/mmsa)")
    ap.add_argument("--predict-posts", type=int, default=24,
                    help="number of MVSA-Single val posts for mvsa_predict")
    args = ap.parse_args()
    torch.set_num_threads(1)

    texts = list(HAND_WRITTEN_TEXTS)
    with open(os.path.join(args.data, "mvsa-single", "posts.csv"), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["split"] == "train" and len(texts) < len(HAND_WRITTEN_TEXTS) + args.posts:
                texts.append(row["text"])

    bert_reference.SHAPES["sqltest"] = SQL_TEST_SHAPE
    model = bert_reference.random_model("sqltest", seed=7, std=0.05)
    cfg = model.config
    max_length = cfg["max_position_embeddings"]

    def text_dir(name):
        d = os.path.join(args.out, name, "text")
        os.makedirs(d, exist_ok=True)
        shutil.copyfile(args.vocab, os.path.join(d, "vocab.txt"))
        return d

    good = text_dir("model")
    bert_reference.save_checkpoint(good, model)

    missing = text_dir("missing-weights")
    shutil.copyfile(os.path.join(good, "config.json"), os.path.join(missing, "config.json"))

    truncated = text_dir("truncated")
    shutil.copyfile(os.path.join(good, "config.json"), os.path.join(truncated, "config.json"))
    with open(os.path.join(good, "model.safetensors"), "rb") as f:
        data = f.read()
    with open(os.path.join(truncated, "model.safetensors"), "wb") as f:
        f.write(data[: len(data) // 2])

    wrong = text_dir("wrong-shape")
    shutil.copyfile(os.path.join(good, "model.safetensors"), os.path.join(wrong, "model.safetensors"))
    wrong_cfg = dict(cfg, intermediate_size=96)
    with open(os.path.join(wrong, "config.json"), "w") as f:
        json.dump(wrong_cfg, f, indent=2)

    # the same encoder marked for tweet normalisation (src/core/tokenizer.h),
    # and one whose tokenizer_config.json is malformed
    for name, config in (("tweet", '{"do_lower_case": true, "tweet_normalization": true}\n'),
                         ("bad-tokenizer-config", '{"tweet_normalization": "yes"}\n')):
        d = text_dir(name)
        for f in ("config.json", "model.safetensors"):
            shutil.copyfile(os.path.join(good, f), os.path.join(d, f))
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            f.write(config)

    os.symlink(os.path.join(ROOT, "weights", "image"), os.path.join(args.out, "model", "image"))
    # image directories whose int8 weights are missing, corrupt (a byte of
    # the data changed) or truncated: mmsa.precision = int8 must refuse them
    weights_image = os.path.join(ROOT, "weights", "image")
    for name in ("no-int8", "corrupt-int8", "truncated-int8"):
        d = os.path.join(args.out, name, "image")
        os.makedirs(d)
        for f in ("config.json", "labels.txt", "model.safetensors", "model.packed", "calibration.json"):
            os.symlink(os.path.join(weights_image, f), os.path.join(d, f))
    with open(os.path.join(weights_image, "model.int8.packed"), "rb") as f:
        int8 = bytearray(f.read())
    with open(os.path.join(args.out, "truncated-int8", "image", "model.int8.packed"), "wb") as f:
        f.write(int8[: len(int8) - 4096])
    int8[len(int8) // 2] ^= 0x01
    with open(os.path.join(args.out, "corrupt-int8", "image", "model.int8.packed"), "wb") as f:
        f.write(int8)
    # and text directories (the tiny model) whose int8 weights are corrupt or
    # truncated; the tiny model itself ("model") has none: missing
    for name in ("corrupt-int8", "truncated-int8"):
        d = text_dir(name)
        for f in ("config.json", "model.safetensors"):
            shutil.copyfile(os.path.join(good, f), os.path.join(d, f))
        subprocess.run([args.cli, "pack", "--model", d], check=True, stdout=subprocess.DEVNULL)
        path = os.path.join(d, "model.int8.packed")
        with open(path, "rb") as f:
            tint8 = bytearray(f.read())
        if name == "corrupt-int8":
            tint8[len(tint8) - 100] ^= 0x40
        else:
            tint8 = tint8[: len(tint8) - 1024]
        with open(path, "wb") as f:
            f.write(tint8)
    images = os.path.join(args.out, "images")
    subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "make_test_images.py"), images],
                   check=True, stdout=subprocess.DEVNULL)
    photos = [os.path.join(SKIMAGE_DATA, n) for n in ("chelsea.png", "coffee.png", "astronaut.png")]
    classify = subprocess.run([args.cli, "classify", "--model", os.path.join(ROOT, "weights", "image"),
                               "-k", "5"] + photos, check=True, capture_output=True, text=True).stdout
    image_rows = []
    for line in classify.splitlines():
        path, rank, class_id, prob, label = line.split("\t")
        image_rows.append((path, int(rank), int(class_id), float(prob), label))

    vocab = bert_tokenizer_ref.load_vocab(args.vocab)
    rows = []
    with torch.inference_mode():
        for text in texts:
            ids = bert_tokenizer_ref.encode(text, vocab, max_length=max_length)
            _, pooled = model(torch.tensor([ids], dtype=torch.int64))
            rows.append((text, ids, pooled[0].numpy().astype(np.float32)))

    # Posts with their images, and what `mmsa predict` says of them: the SQL
    # functions must give the same labels and probabilities.  The last post
    # has no image file, so predict (and SQL, with a NULL image) use the
    # text model for it.
    posts_dir = os.path.join(args.out, "posts")
    os.makedirs(posts_dir, exist_ok=True)
    posts = []
    with open(os.path.join(args.data, "mvsa-single", "posts.csv"), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["split"] == "val" and len(posts) <= args.predict_posts:
                posts.append(row)
    no_image = dict(posts.pop(), id="900000001")
    for row in posts:
        shutil.copyfile(os.path.join(args.data, "mvsa-single", "images", row["id"] + ".jpg"),
                        os.path.join(posts_dir, row["id"] + ".jpg"))
    posts.append(no_image)
    with open(os.path.join(posts_dir, "posts.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "split", "label", "text"])
        w.writeheader()
        for row in posts:
            w.writerow({k: row[k] for k in ("id", "split", "label", "text")})
    model = args.model
    if model is None:
        sharedir = subprocess.run(["pg_config", "--sharedir"], capture_output=True, text=True,
                                  check=True).stdout.strip()
        model = os.path.join(sharedir, "mmsa")
    predicted = []
    predicted_int8 = []
    # the installed model without its ensemble (links to its encoders and
    # heads, a model.json without "ensemble"): asking it for 'ensemble' fails
    no_ensemble = os.path.join(args.out, "no-ensemble")
    os.makedirs(no_ensemble)
    if os.path.isfile(os.path.join(model, "model.json")):
        for name in ("text", "image", "heads"):
            os.symlink(os.path.join(model, name), os.path.join(no_ensemble, name))
        with open(os.path.join(model, "model.json")) as f:
            mj = json.load(f)
        mj.pop("ensemble", None)
        if mj.get("default_fusion") == "ensemble":
            mj["default_fusion"] = max((m for m in mj.get("val_accuracy", {}) if m != "ensemble"),
                                       key=lambda m: mj["val_accuracy"][m])
        with open(os.path.join(no_ensemble, "model.json"), "w") as f:
            json.dump(mj, f, indent=2)
    if os.path.isfile(os.path.join(model, "model.json")):
        out = subprocess.run([args.cli, "predict", "--model", model, "--posts",
                              os.path.join(posts_dir, "posts.csv"), "--images", posts_dir],
                             capture_output=True, text=True, check=True).stdout
        predicted = list(csv.DictReader(out.splitlines()))
        out = subprocess.run([args.cli, "predict", "--model", model, "--posts",
                              os.path.join(posts_dir, "posts.csv"), "--images", posts_dir,
                              "--precision", "int8"],
                             capture_output=True, text=True, check=True).stdout
        predicted_int8 = list(csv.DictReader(out.splitlines()))
    else:
        print("sql_fixtures: no trained model in %s: mvsa_predict stays empty" % model)

    with open(os.path.join(args.out, "fixtures.sql"), "w", encoding="utf-8") as f:
        f.write("-- generated by test/reference/sql_fixtures.py\n")
        f.write("CREATE TABLE fixture_posts (id bigint, body text, image_path text);\n")
        for row in posts:
            path = os.path.join(os.path.abspath(posts_dir), row["id"] + ".jpg")
            f.write("INSERT INTO fixture_posts VALUES (%s, %s, %s);\n" % (
                row["id"], sql_literal(row["text"]),
                sql_literal(path) if os.path.exists(path) else "NULL"))
        f.write("CREATE TABLE mvsa_predict (id bigint, label text, p_negative real, "
                "p_neutral real, p_positive real);\n")
        for r in predicted:
            f.write("INSERT INTO mvsa_predict VALUES (%s, %s, %s, %s, %s);\n" % (
                r["id"], sql_literal(r["label"]), r["p_negative"], r["p_neutral"], r["p_positive"]))
        f.write("CREATE TABLE mvsa_predict_int8 (LIKE mvsa_predict);\n")
        for r in predicted_int8:
            f.write("INSERT INTO mvsa_predict_int8 VALUES (%s, %s, %s, %s, %s);\n" % (
                r["id"], sql_literal(r["label"]), r["p_negative"], r["p_neutral"], r["p_positive"]))
        f.write("CREATE TABLE fixture_texts (body text, ref_ids int[], ref_pooled real[]);\n")
        for text, ids, pooled in rows:
            f.write("INSERT INTO fixture_texts VALUES (%s, '{%s}', '{%s}');\n" % (
                sql_literal(text), ",".join(str(i) for i in ids),
                ",".join("%.9g" % v for v in pooled)))
        f.write("CREATE TABLE fixture_image_classes (path text, rank int, class_id int, "
                "probability real, label text);\n")
        for row in image_rows:
            f.write("INSERT INTO fixture_image_classes VALUES (%s, %d, %d, %.9g, %s);\n" % (
                sql_literal(row[0]), row[1], row[2], row[3], sql_literal(row[4])))
        f.write("CREATE TABLE fixture_images (name text, expect text);\n")
        with open(os.path.join(images, "manifest.json")) as mf:
            for name, entry in sorted(json.load(mf).items()):
                f.write("INSERT INTO fixture_images VALUES (%s, %s);\n" % (
                    sql_literal(name), sql_literal(entry["expect"])))
        # the trained model the suites that need one use: mmsa.model_dir's when
        # it holds a model.json, else the installed one (<sharedir>/mmsa)
        f.write("CREATE FUNCTION fixture_trained_model_dir() RETURNS text LANGUAGE sql STABLE AS $$\n"
                "SELECT CASE WHEN (pg_stat_file(current_setting('mmsa.model_dir') || '/model.json', true)).size\n"
                "                 IS NOT NULL THEN current_setting('mmsa.model_dir')\n"
                "            ELSE (SELECT setting FROM pg_config WHERE name = 'SHAREDIR') || '/mmsa' END\n"
                "$$;\n")
        # the text of an EXPLAIN, one line per row joined by newlines
        f.write("CREATE FUNCTION fixture_plan(query text, do_analyze bool DEFAULT false) RETURNS text\n"
                "LANGUAGE plpgsql AS $$\n"
                "DECLARE line text; result text := '';\n"
                "BEGIN\n"
                "    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF' ||\n"
                "        CASE WHEN do_analyze THEN ', ANALYZE, TIMING OFF, SUMMARY OFF' ELSE '' END || ') ' || query LOOP\n"
                "        result := result || line || E'\\n';\n"
                "    END LOOP;\n"
                "    RETURN result;\n"
                "END $$;\n")
        f.write("CREATE TABLE fixture_settings (max_length int, hidden_size int, model_dir text, "
                "missing_weights_dir text, truncated_dir text, wrong_shape_dir text, "
                "images_dir text, skimage_dir text, no_int8_dir text, corrupt_int8_dir text, "
                "truncated_int8_dir text, no_ensemble_dir text, tweet_dir text, bad_tokenizer_config_dir text);\n")
        f.write("INSERT INTO fixture_settings VALUES (%d, %d, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s);\n" % (
            max_length, cfg["hidden_size"],
            *(sql_literal(os.path.join(os.path.abspath(args.out), n))
              for n in ("model", "missing-weights", "truncated", "wrong-shape", "images")),
            sql_literal(SKIMAGE_DATA),
            *(sql_literal(os.path.join(os.path.abspath(args.out), n))
              for n in ("no-int8", "corrupt-int8", "truncated-int8", "no-ensemble", "tweet",
                        "bad-tokenizer-config"))))
    print("sql_fixtures: %d texts, model at %s" % (len(rows), good))


if __name__ == "__main__":
    main()
