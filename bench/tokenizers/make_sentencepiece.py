#!/usr/bin/env python3
"""A tiny LLaMA-style SentencePiece BPE model and its reference ids, for tests/MoraEngine.Tests/Text/.

Run with Debian's python3-sentencepiece (0.1.97):  /usr/bin/python3 make_sentencepiece.py OUT_DIR
(bench/tokenizers/make-fixtures.sh does). OUT_DIR is tests/MoraEngine.Tests/TestData/tokenizers. Writes
  llama-tiny/tokenizer.model   BPE, vocabulary 512, byte fallback, unk 0, bos 1, eos 2, no pad; trained on the
                               text below (written here, plus the Zen of Python) with LLaMA's options: identity
                               normalization, no whitespace squeezing, digits split, a dummy "▁" prefix;
  llama-tiny/config.json       bos_token_id / eos_token_id as a Hugging Face model directory has them;
  llama-tiny-json/tokenizer.json, llama-tiny-json-metaspace/tokenizer.json
                               the same model in Hugging Face's tokenizer.json format, converted as transformers'
                               LlamaConverter does (vocab from the pieces, merges from every split of a piece into two
                               pieces ordered by score): the legacy form (Prepend/Replace normalizer, Strip decoder)
                               and the newer one (Metaspace pre-tokenizer, prepend_scheme "first", which adds no
                               "▁" to a text that starts with a space: there Hugging Face differs from sentencepiece);
  llama-tiny-reference.json    {"texts", "ids", "decoded"}: sentencepiece's own encode(text) (no BOS; with the dummy
                               prefix, as SentencePiece adds by default) and decode(ids) for bench/tokenizers/texts.json;
                               {"decode_ids", "decode_texts"}: its decode of id lists that encode never gives.
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


def write_tokenizer_json(sp, out_dir, metaspace):
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    # transformers' SentencePieceExtractor: each piece's two-piece splits, by the halves' ids, then all by score.
    merges = []
    for piece, pid in vocab.items():
        local = [(piece[:k], piece[k:], sp.get_score(pid)) for k in range(1, len(piece))
                 if piece[:k] in vocab and piece[k:] in vocab]
        merges.extend(sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]])))
    merges = [f"{l} {r}" for l, r, _ in sorted(merges, key=lambda m: m[2], reverse=True)]
    special = [{"id": i, "content": sp.id_to_piece(i), "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for i in (sp.unk_id(), sp.bos_id(), sp.eos_id())]
    decoder = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    if metaspace:
        normalizer = None
        pre_tokenizer = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    else:
        normalizer = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
        pre_tokenizer = None
    doc = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": special,
        "normalizer": normalizer, "pre_tokenizer": pre_tokenizer,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [sp.bos_id()], "tokens": ["<s>"]}}},
        "decoder": decoder,
        "model": {"type": "BPE", "dropout": None, "unk_token": sp.id_to_piece(sp.unk_id()),
                  "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": True,
                  "byte_fallback": True, "ignore_merges": False, "vocab": vocab, "merges": merges},
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "legacy": not metaspace,
                   "tokenizer_class": "LlamaTokenizerFast"}, f, indent=1)
        f.write("\n")


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
    write_tokenizer_json(sp, os.path.join(out, "llama-tiny-json"), metaspace=False)
    write_tokenizer_json(sp, os.path.join(out, "llama-tiny-json-metaspace"), metaspace=True)
    ids = [sp.encode(t) for t in texts]
    decoded = [sp.decode(i) for i in ids]
    for t, d in zip(texts, decoded):
        assert t == d, (t, d)
    # Decoding id lists that encode() never produces: a byte piece before a "▁" piece, control and unknown pieces,
    # a character cut short, a sequence that starts mid-text.
    piece = sp.piece_to_id
    decode_cases = [[piece("<0x0A>"), piece("\u2581\u2581")], [sp.bos_id(), piece("\u2581t"), sp.eos_id()],
                    [sp.unk_id(), piece("\u2581t")], [piece("<0xF0>"), piece("<0x9F>")], [piece("e"), piece("\u2581t")],
                    [piece("\u2581"), piece("\u2581t")], [piece("<0x20>"), piece("\u2581t")]]
    with open(os.path.join(out, "llama-tiny-reference.json"), "w", encoding="utf-8") as f:
        json.dump({"source": "sentencepiece " + spm.__version__ + " encode(text), decode(ids)",
                   "texts": texts, "ids": ids, "decoded": decoded,
                   "decode_ids": decode_cases, "decode_texts": [sp.decode(c) for c in decode_cases]}, f, ensure_ascii=False)
        f.write("\n")
    print(f"wrote llama-tiny ({sp.get_piece_size()} pieces) and reference ids for {len(texts)} texts to {out}")


if __name__ == "__main__":
    main()
