import { existsSync, readFileSync } from 'node:fs';
import { ReferenceBackend } from '../backend/reference.js';
import { type TokenizerConfig, canonicalTokenizerConfig } from '../data/config.js';
import { Vocabulary, type VocabularyJSON } from '../data/vocabulary.js';
import { CharnnError } from '../errors.js';
import { cellNameList, findCell } from '../model/cells/index.js';
import { type ModelConfig, validateModelConfig } from '../model/config.js';
import { Model } from '../model/model.js';
import { CHARNN_VERSION, loadModelFile, saveModelFile } from './contents.js';
import { readSafetensors, writeOutputFile, writeSafetensors } from './safetensors.js';
import { fromTorchTensors, toTorchTensors } from './torch-layout.js';
import { requireFinite } from './finite.js';
import { describeFsError } from '../util/fs-errors.js';

/**
 * `charnn export` and `charnn import`: a model file <-> a safetensors file PyTorch loads into
 * python/charnn_torch.py's CharnnModel (tensor names and layouts in torch-layout.ts).
 *
 * What the model is (config, tokenizer, vocabulary) travels as a JSON "description", in the
 * safetensors `__metadata__` under "charnn" and in a sidecar JSON file beside it for tools that
 * drop metadata. Only the model's parameters are exported: optimizer state and carried hidden
 * state belong to a training run, and an imported model starts with none.
 */
export interface TorchModelDescription {
  kind: typeof DESCRIPTION_KIND;
  /** Version of the tensor layout; bumped if names or layouts ever change. */
  layout: number;
  /** Who wrote it: the charnn version, or python/charnn_torch.py. */
  writer: string;
  model: ModelConfig;
  tokenizer: TokenizerConfig;
  vocabulary: VocabularyJSON;
}

export const DESCRIPTION_KIND = 'charnn-torch';
export const LAYOUT_VERSION = 1;
/** The `__metadata__` key holding the description (as a JSON string: metadata values are strings). */
export const METADATA_DESCRIPTION_KEY = 'charnn';

/** The sidecar beside a safetensors file: `x.safetensors` -> `x.json`; any other name gets `.json` appended. */
export function sidecarPathFor(path: string): string {
  return path.endsWith('.safetensors') ? `${path.slice(0, -'.safetensors'.length)}.json` : `${path}.json`;
}

export interface ExportResult {
  sidecar: string;
  tensors: number;
  parameters: number;
}

/** Writes model file `modelPath` as safetensors to `outPath`, and its description to the sidecar. */
export async function exportTorchModel(modelPath: string, outPath: string): Promise<ExportResult> {
  // The CLI guards the outputs (guardOutputs: not the model, not a file of another kind).
  const sidecar = sidecarPathFor(outPath);
  const backend = new ReferenceBackend();
  const loaded = await loadModelFile(modelPath, backend);
  const { model } = loaded;
  const values = new Map<string, Float32Array>();
  for (let i = 0; i < model.params.specs.length; i++) {
    values.set(model.params.specs[i].name, Float32Array.from(await backend.read(model.params.tensors[i])));
  }
  const tensors = toTorchTensors(model.config, (name) => values.get(name)!);
  const description: TorchModelDescription = {
    kind: DESCRIPTION_KIND,
    layout: LAYOUT_VERSION,
    writer: `charnn ${CHARNN_VERSION}`,
    // Written field by field so the description is the same whatever else a stored config carries.
    model: pickModelConfig(model.config),
    tokenizer: loaded.meta.tokenizer,
    vocabulary: loaded.vocabulary.toJSON(),
  };
  // "format": "pt" is what safetensors.torch writes; some loaders look for it.
  await writeSafetensors(outPath, { metadata: { format: 'pt', [METADATA_DESCRIPTION_KEY]: JSON.stringify(description) }, tensors });
  await writeOutputFile(sidecar, [Buffer.from(`${JSON.stringify(description, null, 2)}\n`, 'utf8')]);
  return { sidecar, tensors: tensors.length, parameters: model.params.count() };
}

export interface ImportResult {
  /** Where the description came from: the file's metadata, or the sidecar / --config path. */
  descriptionFrom: string;
  config: ModelConfig;
  parameters: number;
}

/**
 * Reads a safetensors file written by `charnn export` or python/charnn_torch.py's `save`,
 * checks every tensor against its description, and writes a charnn model file (no training
 * state) to `outPath`. The description comes from `configPath` when given, else from the
 * file's metadata, else from the sidecar beside it. Nothing is written unless everything checks.
 */
export async function importTorchModel(inPath: string, outPath: string, configPath?: string): Promise<ImportResult> {
  // The CLI guards the output (guardOutputs: not an input, not a file of another kind).
  const file = await readSafetensors(inPath);
  for (const t of file.tensors) requireFinite(inPath, t.name, t.data);
  const { description, from } = findDescription(inPath, file.metadata, configPath);
  const desc = parseDescription(description, from);
  const values = fromTorchTensors(desc.model, file.tensors, inPath);
  const model = Model.fromValues(new ReferenceBackend(), desc.model, (name) => values.get(name)!);
  await saveModelFile(outPath, { model, tokenizer: desc.tokenizer, vocabulary: desc.vocabulary });
  return { descriptionFrom: from, config: desc.model, parameters: model.params.count() };
}

/** The description's JSON text and where it came from. */
function findDescription(inPath: string, metadata: Record<string, string>, configPath?: string): { description: string; from: string } {
  const readText = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new CharnnError(`cannot read the description ${path}: ${describeFsError(error)}`, 'pass the .json file charnn export or charnn_torch.save wrote beside the .safetensors');
    }
  };
  if (configPath !== undefined) return { description: readText(configPath), from: configPath };
  if (metadata[METADATA_DESCRIPTION_KEY] !== undefined) return { description: metadata[METADATA_DESCRIPTION_KEY], from: `the metadata of ${inPath}` };
  const sidecar = sidecarPathFor(inPath);
  if (existsSync(sidecar)) return { description: readText(sidecar), from: sidecar };
  throw new CharnnError(
    `${inPath} carries no charnn model description (no "${METADATA_DESCRIPTION_KEY}" metadata, and no ${sidecar} beside it)`,
    'pass --config with the .json file charnn export or charnn_torch.save wrote',
  );
}

interface ParsedDescription {
  model: ModelConfig;
  tokenizer: TokenizerConfig;
  vocabulary: Vocabulary;
}

/**
 * Checks a description field by field. It comes from a file the user chose, so every problem
 * is a one-line CharnnError (exit 1) naming where it came from, never a crash later.
 */
export function parseDescription(text: string, from: string): ParsedDescription {
  const bad = (why: string) => new CharnnError(`${from}: malformed charnn model description: ${why}`, 'pass the .json file charnn export or charnn_torch.save wrote');
  let d: unknown;
  try {
    d = JSON.parse(text);
  } catch {
    throw bad('not valid JSON');
  }
  if (!isRecord(d) || d.kind !== DESCRIPTION_KIND) throw bad(`"kind" is not "${DESCRIPTION_KIND}"`);
  if (d.layout !== LAYOUT_VERSION) throw bad(`tensor layout ${JSON.stringify(d.layout)}; this charnn reads layout ${LAYOUT_VERSION}`);
  const m = d.model;
  if (!isRecord(m)) throw bad('"model" is not an object');
  if (typeof m.cell !== 'string' || !findCell(m.cell)) throw bad(`model.cell ${JSON.stringify(m.cell)} is not ${cellNameList()}`);
  for (const k of ['vocabSize', 'hidden', 'layers', 'embed', 'dropout'] as const) if (typeof m[k] !== 'number') throw bad(`model.${k} is not a number`);
  if (m.tie !== undefined && typeof m.tie !== 'boolean') throw bad('model.tie is not true or false');
  const model = pickModelConfig(m as unknown as ModelConfig);
  try {
    validateModelConfig(model);
  } catch (error) {
    throw bad((error as Error).message);
  }
  const t = d.tokenizer;
  if (!isRecord(t) || (t.level !== 'char' && t.level !== 'word') || (t.invalidUtf8 !== 'error' && t.invalidUtf8 !== 'replace') || (t.wordSplit !== 'punct' && t.wordSplit !== 'space')) {
    throw bad('"tokenizer" is not a charnn tokenizer config');
  }
  let tokenizer: TokenizerConfig;
  let vocabulary: Vocabulary;
  try {
    tokenizer = canonicalTokenizerConfig(t as unknown as TokenizerConfig);
    vocabulary = Vocabulary.fromJSON(d.vocabulary);
  } catch (error) {
    throw bad((error as Error).message);
  }
  if (vocabulary.level !== tokenizer.level) throw bad(`a ${vocabulary.level}-level vocabulary with a ${tokenizer.level}-level tokenizer`);
  if (vocabulary.level === 'char' && vocabulary.lineEndings !== (tokenizer.lineEndings ?? 'keep')) throw bad(`the vocabulary reads line endings as ${vocabulary.lineEndings} but the tokenizer as ${tokenizer.lineEndings ?? 'keep'}`);
  if (vocabulary.level === 'word' && vocabulary.wordSplit !== tokenizer.wordSplit) throw bad(`the vocabulary splits words by ${vocabulary.wordSplit} but the tokenizer by ${tokenizer.wordSplit}`);
  if (vocabulary.size !== model.vocabSize) throw bad(`the vocabulary has ${vocabulary.size} tokens but model.vocabSize is ${model.vocabSize}`);
  return { model, tokenizer, vocabulary };
}

/** Exactly the ModelConfig fields (tie only when set), whatever else an object carries. */
function pickModelConfig(m: ModelConfig): ModelConfig {
  const c: ModelConfig = { cell: m.cell, vocabSize: m.vocabSize, hidden: m.hidden, layers: m.layers, embed: m.embed, dropout: m.dropout };
  if (m.tie) c.tie = true;
  return c;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
