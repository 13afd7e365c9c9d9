// Reference ids for the tokenizer.json fixtures from Hugging Face's own JavaScript port of `tokenizers`
// (@huggingface/tokenizers, "Tokenizers.js"). bench/tokenizers/make-fixtures.sh installs it in a temporary
// directory and runs this after gpt2_reference.js and make_sentencepiece.py.
//
//   node tokenizer_json_reference.mjs PACKAGE_DIR OUT_DIR
//
// For each tokenizer.json fixture it encodes bench/tokenizers/texts.json without special tokens, checks that decoding
// gives the text back and that the ids equal the reference of the tokenizer that fixture was made from (gpt-3-encoder
// on gpt2-tiny, sentencepiece on llama-tiny), except for llama-tiny-json-metaspace (Hugging Face's Metaspace with
// prepend_scheme "first" adds no "▁" to a text that already starts with a space, where sentencepiece always adds
// one) and the Qwen2/SmolLM2 forms of gpt2-tiny (other pre-tokenizers): their ids are Tokenizers.js's own (the
// differences are listed). Writes tokenizer-json-reference.json:
//   {"source": ..., "texts": [...], "tokenizers": {"gpt2-tiny-json": {"ids": [[...], ...], "decoded": [...]}, ...}}
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [pkgDir, outDir] = process.argv.slice(2);
if (!pkgDir || !outDir) {
  console.error('usage: node tokenizer_json_reference.mjs PACKAGE_DIR OUT_DIR');
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf-8'));
const { Tokenizer } = await import(pathToFileURL(path.join(pkgDir, 'dist', 'tokenizers.mjs')).href);
const texts = JSON.parse(fs.readFileSync(path.join(here, 'texts.json'), 'utf-8')).texts;
const read = f => JSON.parse(fs.readFileSync(path.join(outDir, f), 'utf-8'));

// fixture → [the reference it was made from, whether Tokenizers.js must agree with it]
const fixtures = {
  'gpt2-tiny-json': ['gpt2-tiny-reference.json', true],
  'llama-tiny-json': ['llama-tiny-reference.json', true],
  'llama-tiny-json-metaspace': ['llama-tiny-reference.json', false],
  'gpt2-tiny-json-qwen2': ['gpt2-tiny-reference.json', false],
  'gpt2-tiny-json-smollm2': ['gpt2-tiny-reference.json', false],
};
const result = {};
let failures = 0;
for (const [dir, [refFile, strict]] of Object.entries(fixtures)) {
  const json = read(path.join(dir, 'tokenizer.json'));
  const cfgPath = path.join(outDir, dir, 'tokenizer_config.json');
  const config = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, 'utf-8')) : {};
  const tok = new Tokenizer(json, config);
  const ref = read(refFile);
  const decoded = [];
  const ids = texts.map((t, i) => {
    const ids = tok.encode(t, { add_special_tokens: false }).ids;
    const want = ref.ids[i];
    if (JSON.stringify(ids) !== JSON.stringify(want)) {
      if (strict) failures++;
      (strict ? console.error : console.log)(`${dir}: ${JSON.stringify(t)}\n  tokenizers.js ${JSON.stringify(ids)}\n  ${refFile} ${JSON.stringify(want)}${strict ? '' : ' (may differ)'}`);
    }
    // transformers' clean_up_tokenization_spaces is a decode-time extra of the Python/JS front ends, not part of
    // tokenizer.json; it is off here, as in the engine.
    const back = ids.length === 0 ? '' : tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
    decoded.push(back);
    if (back !== t) {
      if (strict) failures++;
      (strict ? console.error : console.log)(`${dir}: decode(${JSON.stringify(t)}) gave ${JSON.stringify(back)}`);
    }
    return ids;
  });
  result[dir] = { ids, decoded };
}
fs.writeFileSync(path.join(outDir, 'tokenizer-json-reference.json'),
  JSON.stringify({ source: `${pkg.name} ${pkg.version}`, texts, tokenizers: result }) + '\n', 'utf-8');
if (failures > 0) {
  console.error(`${failures} differences between tokenizers.js and the reference tokenizers`);
  process.exit(1);
}
console.log(`tokenizers.js agrees with gpt-3-encoder and sentencepiece on ${Object.values(fixtures).filter(f => f[1]).length} tokenizer.json fixtures; wrote tokenizer-json-reference.json`);
