#!/usr/bin/python3
"""The C BERT encoder (mmsa embed) against the PyTorch reference, layer by
layer, and its handling of bad checkpoints, configs and inputs.

Fixtures are generated into $MMSA_TMP/bert_reference by
test/reference/bert_reference.py: random checkpoints at the small and
bert-base shapes (F32, F16, "bert."-prefixed with LayerNorm gamma/beta),
inputs with padding and T = max_position_embeddings, and the reference
outputs of every layer.  Every hidden state and the pooled output must be
within 1e-4 (absolute) of PyTorch.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import bert_reference as ref  # noqa: E402
from tap import ok, diag, skip, done, ROOT, CLI, TMP  # noqa: E402

WORK = os.path.join(TMP, "bert_reference")
TOL = 1e-4


def embed(model_dir, inputs, output, *extra):
    return subprocess.run([CLI, "embed", "--model", model_dir, "--inputs", inputs,
                           "--output", output, *extra],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)


# ---- outputs against the reference, layer by layer -----------------------

def check_case(case, model, label, extra=()):
    d = os.path.join(WORK, case)
    out = os.path.join(d, "out_%s.safetensors" % model)
    r = embed(os.path.join(WORK, model), os.path.join(d, "inputs.safetensors"), out,
              "--all-layers", *extra)
    if not ok(r.returncode == 0, "%s: mmsa embed runs" % label):
        diag(r.stderr)
        return
    expected = ref.read_safetensors(os.path.join(d, "expected.safetensors"))
    got = ref.read_safetensors(out)
    names = sorted((k for k in expected if k.startswith("hidden_states.")),
                   key=lambda k: int(k.split(".")[1]))
    for k in names + ["last_hidden_state", "pooler_output"]:
        if k not in got or got[k].shape != expected[k].shape:
            ok(False, "%s: %s present with shape %s" % (label, k, expected[k].shape))
            continue
        diff = float(np.max(np.abs(got[k].astype(np.float64) - expected[k])))
        what = "embedding output" if k == "hidden_states.0" else k
        ok(diff <= TOL, "%s: %s max abs diff %.3g <= %g" % (label, what, diff, TOL))


def check_mask_matters():
    """The tolerance can fail: ignoring the attention mask of the padded
    batch must move the padded rows by far more than 1e-4."""
    d = os.path.join(WORK, "small_padded")
    inputs = ref.read_safetensors(os.path.join(d, "inputs.safetensors"))
    nomask = os.path.join(WORK, "small_nomask_inputs.safetensors")
    ref.write_safetensors(nomask, {"input_ids": inputs["input_ids"],
                                   "token_type_ids": inputs["token_type_ids"]})
    out = os.path.join(WORK, "small_nomask_out.safetensors")
    r = embed(os.path.join(WORK, "small"), nomask, out)
    expected = ref.read_safetensors(os.path.join(d, "expected.safetensors"))
    if r.returncode != 0:
        ok(False, "without the attention mask, padded rows differ from the reference")
        diag(r.stderr)
        return
    got = ref.read_safetensors(out)["last_hidden_state"]
    diff_padded = float(np.max(np.abs(got[2] - expected["last_hidden_state"][2])))
    diff_full = float(np.max(np.abs(got[0] - expected["last_hidden_state"][0])))
    ok(diff_padded > 100 * TOL and diff_full <= TOL,
       "without the attention mask, the padded row differs by %.3g, the unpadded by %.3g"
       % (diff_padded, diff_full))


def check_text_mode():
    """mmsa embed --text: the texts tokenized by the C tokenizer (ids as
    `mmsa tokenize` prints them), padded into one batch, through the
    bert-base-shaped checkpoint; pooler outputs against PyTorch."""
    vocab = os.environ.get("MMSA_VOCAB") or os.path.join(ROOT, "weights", "text", "vocab.txt")
    label = "embed --text: pooled outputs of a padded batch of 3 texts"
    if not os.path.exists(vocab):
        skip(label, "no vocab.txt (src/tools fetches it)")
        return
    texts = ["Hello, world!", "A much longer sentence, with commas; and punctuation...", "ok"]
    base = os.path.join(WORK, "base")
    tok = subprocess.run([CLI, "tokenize", "--vocab", vocab, *texts], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=60)
    emb = subprocess.run([CLI, "embed", "--model", base, "--vocab", vocab, "--threads", "2",
                          *sum((["--text", t] for t in texts), [])],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if tok.returncode != 0 or emb.returncode != 0:
        ok(False, label)
        diag(tok.stderr + emb.stderr)
        return
    rows = [[int(x) for x in line.split()] for line in tok.stdout.splitlines()]
    T = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), T, dtype=torch.int64)
    mask = torch.zeros(len(rows), T, dtype=torch.int64)
    for b, r in enumerate(rows):
        ids[b, :len(r)] = torch.tensor(r)
        mask[b, :len(r)] = 1
    with open(os.path.join(base, "config.json")) as f:
        model = ref.BertModel(json.load(f))
    weights = ref.read_safetensors(os.path.join(base, "model.safetensors"))
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
    with torch.inference_mode():
        _, pooled = model.eval()(ids, mask)
    got = np.array([json.loads(line) for line in emb.stdout.splitlines()], dtype=np.float64)
    if got.shape != tuple(pooled.shape):
        ok(False, label + " (shape %s, expected %s)" % (got.shape, tuple(pooled.shape)))
        return
    diff = float(np.max(np.abs(got - pooled.numpy())))
    ok(diff <= TOL, "%s max abs diff %.3g <= %g" % (label, diff, TOL))


# ---- bad checkpoints, configs and inputs ---------------------------------

def expect_error(label, model_dir, inputs=None, needles=()):
    inputs = inputs or os.path.join(WORK, "small_padded", "inputs.safetensors")
    out = os.path.join(WORK, "bad_out.safetensors")
    if os.path.exists(out):
        os.remove(out)
    r = embed(model_dir, inputs, out)
    msg = r.stderr.strip()
    good = (r.returncode == 1 and msg.startswith("mmsa embed: ")
            and all(n in msg for n in needles) and not os.path.exists(out))
    ok(good, "%s: clear error (%s)" % (label, msg.replace("\n", " ")[:200] or "exit %d" % r.returncode))


def bad_dir(name, config=None, tensors=None, header_override=None, raw=None):
    """A model directory with the small config (or config) and the small
    checkpoint's tensors (or tensors), or raw bytes as model.safetensors."""
    d = os.path.join(WORK, "bad", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        if isinstance(config, str):
            f.write(config)
        else:
            json.dump(config or SMALL_CONFIG, f)
    if raw is not None:
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(raw)
    elif tensors is not False:
        ref.write_safetensors(os.path.join(d, "model.safetensors"),
                              tensors if tensors is not None else SMALL_TENSORS,
                              header_override=header_override)
    return d


def check_bad_inputs():
    C = SMALL_CONFIG["hidden_size"]

    expect_error("missing model.safetensors", bad_dir("nofile", tensors=False),
                 needles=["model.safetensors"])
    expect_error("missing config.json", os.path.join(WORK, "bad", "nonexistent"),
                 needles=["config.json"])
    with open(os.path.join(WORK, "small", "model.safetensors"), "rb") as f:
        whole = f.read()
    expect_error("truncated model.safetensors", bad_dir("truncated", raw=whole[:len(whole) * 2 // 3]))
    expect_error("truncated header", bad_dir("truncated_header", raw=whole[:100]))

    def far_offsets(h):
        h["encoder.layer.0.attention.self.key.weight"]["data_offsets"] = [0, 1 << 40]
    expect_error("header offsets past the end of the file", bad_dir("offsets", header_override=far_offsets))

    def inverted(h):
        h["pooler.dense.bias"]["data_offsets"] = [4 * C, 0]
    expect_error("header offsets end before begin", bad_dir("inverted", header_override=inverted))

    t = dict(SMALL_TENSORS)
    t["encoder.layer.1.attention.self.query.weight"] = np.zeros((C, C // 2), np.float32)
    expect_error("wrong tensor shape", bad_dir("shape", tensors=t),
                 needles=["encoder.layer.1.attention.self.query.weight", "shape"])
    t = dict(SMALL_TENSORS)
    del t["encoder.layer.1.output.dense.bias"]
    expect_error("missing tensor", bad_dir("missing", tensors=t),
                 needles=["encoder.layer.1.output.dense.bias"])
    t = dict(SMALL_TENSORS)
    del t["embeddings.word_embeddings.weight"]
    expect_error("not a BERT checkpoint", bad_dir("notbert", tensors=t),
                 needles=["embeddings.word_embeddings.weight"])
    t = dict(SMALL_TENSORS)
    t["embeddings.LayerNorm.weight"] = t["embeddings.LayerNorm.weight"].astype(np.int32)
    expect_error("integer weight tensor", bad_dir("dtype", tensors=t),
                 needles=["embeddings.LayerNorm.weight"])

    def cfg(**changes):
        c = dict(SMALL_CONFIG)
        for k, v in changes.items():
            if v is None:
                del c[k]
            else:
                c[k] = v
        return c
    expect_error("config.json not JSON", bad_dir("cfg_json", config="{\"vocab_size\": 10,"),
                 needles=["invalid JSON"])
    expect_error("config.json not an object", bad_dir("cfg_array", config="[1, 2]"),
                 needles=["config.json"])
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "max_position_embeddings", "type_vocab_size",
                "layer_norm_eps", "hidden_act"):
        expect_error("config.json without %s" % key, bad_dir("cfg_no_" + key, config=cfg(**{key: None})),
                     needles=[key, "missing"])
    for key, value in (("vocab_size", "1000"), ("num_hidden_layers", -1), ("num_attention_heads", 0),
                       ("intermediate_size", 10 ** 9), ("hidden_size", 2.5),
                       ("max_position_embeddings", 10 ** 7), ("layer_norm_eps", "tiny"),
                       ("layer_norm_eps", 0), ("hidden_act", "relu"),
                       ("position_embedding_type", "relative_key")):
        expect_error("config.json %s = %r" % (key, value),
                     bad_dir("cfg_%s_%s" % (key, value), config=cfg(**{key: value})), needles=[key])
    expect_error("config.json hidden_size not divisible by heads",
                 bad_dir("cfg_heads", config=cfg(num_attention_heads=5)),
                 needles=["hidden_size", "num_attention_heads"])
    expect_error("config.json with more layers than the checkpoint",
                 bad_dir("cfg_layers", config=cfg(num_hidden_layers=3)), needles=["encoder.layer.2."])
    expect_error("config.json shape other than the checkpoint's",
                 bad_dir("cfg_hidden", config=cfg(hidden_size=128, num_attention_heads=4)),
                 needles=["embeddings.word_embeddings.weight", "shape"])

    small = os.path.join(WORK, "small")
    V, P = SMALL_CONFIG["vocab_size"], SMALL_CONFIG["max_position_embeddings"]

    def inputs(name, **tensors):
        p = os.path.join(WORK, "bad", name + ".safetensors")
        ref.write_safetensors(p, tensors)
        return p
    ids = np.ones((2, 8), np.int32)
    expect_error("token id = vocab_size", small,
                 inputs("ids_vocab", input_ids=np.where(np.arange(16).reshape(2, 8) == 9, V, 1).astype(np.int32)),
                 needles=["vocabulary"])
    expect_error("negative token id", small, inputs("ids_neg", input_ids=-ids), needles=["vocabulary"])
    expect_error("sequence longer than max_position_embeddings", small,
                 inputs("ids_long", input_ids=np.ones((1, P + 1), np.int32)),
                 needles=["max_position_embeddings"])
    expect_error("attention mask value 2", small,
                 inputs("mask_two", input_ids=ids, attention_mask=2 * ids), needles=["attention mask"])
    expect_error("attention mask of another shape", small,
                 inputs("mask_shape", input_ids=ids, attention_mask=np.ones((2, 7), np.int32)),
                 needles=["attention_mask"])
    expect_error("token type 2 with type_vocab_size 2", small,
                 inputs("types", input_ids=ids, token_type_ids=2 * ids), needles=["token type"])
    expect_error("no input_ids", small, inputs("noids", attention_mask=ids), needles=["input_ids"])
    expect_error("float input_ids", small, inputs("floatids", input_ids=ids.astype(np.float32)),
                 needles=["input_ids"])


def main():
    global SMALL_CONFIG, SMALL_TENSORS
    if not os.access(CLI, os.X_OK):
        ok(False, "mmsa CLI built at %s" % CLI)
        return done()
    shutil.rmtree(WORK, ignore_errors=True)
    ref.gen_tests(WORK)
    with open(os.path.join(WORK, "small", "config.json")) as f:
        SMALL_CONFIG = json.load(f)
    SMALL_TENSORS = ref.read_safetensors(os.path.join(WORK, "small", "model.safetensors"))

    check_case("small_padded", "small", "small (2x64, 4 heads), padded batch with token types")
    check_case("small_maxpos", "small", "small, T = max_position_embeddings (32)")
    check_case("small_f16_padded", "small_f16", "small F16 checkpoint")
    check_case("small_padded", "small_legacy", "small, bert. prefix + LayerNorm gamma/beta")
    check_case("base_padded", "base", "bert-base shape (12x768, 12 heads), padded", ("--threads", "2"))
    check_mask_matters()
    check_text_mode()
    check_bad_inputs()
    shutil.rmtree(os.path.join(WORK, "base"), ignore_errors=True)  # 440 MB
    return done()


if __name__ == "__main__":
    sys.exit(main())
