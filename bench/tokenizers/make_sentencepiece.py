#!/usr/bin/env python3
"""A tiny LLaMA-style SentencePiece BPE model and its reference ids, for tests/MoraEngine.Tests/Text/.

Run with Debian's python3-sentencepiece (0.1.97):  /usr/bin/python3 make_sentencepiece.py OUT_DIR
(bench/tokenizers/make-fixtures.sh does). OUT_DIR is tests/MoraEngine.Tests/TestData/tokenizers. Writes
  llama-tiny/tokenizer.model   BPE, vocabulary 512, byte fallback, unk 0, bos 1, eos 2, no pad; trained on the
                               text below (written here, plus the Zen of Python) with LLaMA's options: identity
                               normalization, no whitespace squeezing, digits split, a dummy "▁" prefix;
  llama-tiny/config.json       bos_token_id / eos_token_id as a Hugging Face model directory has them;
  llama-tiny-reference.json    {"texts", "ids", "decoded"}: sentencepiece's own encode(text) (no BOS; with the dummy
                               prefix, as SentencePiece adds by default) and decode(ids) for bench/tokenizers/texts.json.
"""
import codecs
import contextlib
import io
import json
import os
import sys

import sentencepiece as spm

CORPUS = """\
A tokenizer turns text into a sequence of integers, and a language model learns to predict the next one.
The quick brown fox jumps over the lazy dog; the five boxing wizards jump quickly.
Pack my box with five dozen liquor jugs! How vexingly quick daft zebras jump.
She sells sea shells by the sea shore, and the shells she sells are surely sea shells.
In 1969, two astronauts walked on the Moon; in 2024 the engine trained on 4096 tokens per step.
We don't know what we'll find, but I'm sure they're ready, and you've seen it's working.
Numbers like 3.14159, 2.71828 and 1,000,000 appear in tables, prices ($19.99) and dates (2024-01-31).
The caf\u00e9 on the corner serves cr\u00e8me br\u00fbl\u00e9e; a na\u00efve visitor orders a r\u00e9sum\u00e9 of the menu.
def train(model, data, steps=100):
    for step in range(steps):
        loss = model.step(data.next())
        if step % 10 == 0:
            print(f"step {step}: loss {loss:.4f}")
    return model
Questions? Answers! Lists: apples, oranges, pears; brackets (round), [square] and {curly}.
"Quoted speech," she said, "is common in stories." He replied: 'Single quotes too.'
Transformers use attention: every position looks at every earlier position and mixes their values.
Low-rank adapters train a small update to a large frozen weight matrix, which saves memory.
The weather was cold and bright; the river ran fast under the old stone bridge near the mill.
Reading, writing and arithmetic were taught in the small school at the edge of the village.
"""


def zen_of_python():
    # The `this` module prints the Zen of Python on import and keeps it ROT13-encoded in this.s.
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    return codecs.decode(this.s, "rot13")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_sentencepiece.py OUT_DIR")
    out = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    texts = json.load(open(os.path.join(here, "texts.json"), encoding="utf-8"))["texts"]
    model_dir = os.path.join(out, "llama-tiny")
    os.makedirs(model_dir, exist_ok=True)
    # Lines from memory and the model into memory: no file names end up in the model's trainer_spec, so a rerun
    # writes the same bytes.
    lines = (CORPUS * 3 + zen_of_python()).splitlines()
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=writer, vocab_size=512, model_type="bpe", byte_fallback=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, character_coverage=1.0,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
        split_digits=True, allow_whitespace_only_pieces=True, num_threads=1, minloglevel=2)
    model = writer.getvalue()
    with open(os.path.join(model_dir, "tokenizer.model"), "wb") as f:
        f.write(model)
    with open(os.path.join(model_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump({"model_type": "llama", "bos_token_id": 1, "eos_token_id": 2, "vocab_size": 512}, f, indent=2)
        f.write("\n")
    sp = spm.SentencePieceProcessor(model_proto=model)
    ids = [sp.encode(t) for t in texts]
    decoded = [sp.decode(i) for i in ids]
    for t, d in zip(texts, decoded):
        assert t == d, (t, d)
    with open(os.path.join(out, "llama-tiny-reference.json"), "w", encoding="utf-8") as f:
        json.dump({"source": "sentencepiece " + spm.__version__ + " encode(text), decode(ids)",
                   "texts": texts, "ids": ids, "decoded": decoded}, f, ensure_ascii=False)
        f.write("\n")
    print(f"wrote llama-tiny ({sp.get_piece_size()} pieces) and reference ids for {len(texts)} texts to {out}")


if __name__ == "__main__":
    main()
