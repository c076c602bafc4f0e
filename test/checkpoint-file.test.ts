import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CharnnError } from '../src/errors.js';
import { type AtomicFileSystem, nodeFileSystem } from '../src/checkpoint/atomic-file.js';
import {
  type Checkpoint,
  CheckpointFormatError,
  decodeCheckpoint,
  encodeCheckpoint,
  isCheckpointFile,
  readCheckpoint,
  readCheckpointMeta,
  writeCheckpoint,
} from '../src/checkpoint/index.js';
import { writeCheckpointWith } from '../src/checkpoint/write.js';
import { expectSameTensors, floats, sampleCheckpoint } from './checkpoint-helpers.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'charnn-checkpoint-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A checkpoint whose every value is `value`, so files from different writers differ. */
function filled(value: number, size = 1000): Checkpoint {
  return { meta: { writer: value }, tensors: [{ name: 'w', shape: [size], data: new Float32Array(size).fill(value) }] };
}

async function rejection(promise: Promise<unknown>): Promise<CharnnError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(CharnnError);
    expect((error as CharnnError).message).not.toContain('\n');
    return error as CharnnError;
  }
  throw new Error('expected a CharnnError, but the promise resolved');
}

describe('writeCheckpoint / readCheckpoint', () => {
  it('round-trips and writes exactly the encoded bytes', async () => {
    const path = join(dir, 'model.charnn');
    await writeCheckpoint(path, sampleCheckpoint());
    expect(await readFile(path)).toEqual(encodeCheckpoint(sampleCheckpoint()));
    const loaded = await readCheckpoint(path);
    expect(loaded.meta).toEqual(sampleCheckpoint().meta);
    expectSameTensors(loaded, sampleCheckpoint());
    expect(await readdir(dir)).toEqual(['model.charnn']);
  });

  it('replaces an existing checkpoint', async () => {
    const path = join(dir, 'model.charnn');
    await writeCheckpoint(path, filled(1));
    await writeCheckpoint(path, filled(2, 10));
    expect(decodeCheckpoint(await readFile(path)).meta).toEqual({ writer: 2 });
  });

  it('reports a missing file, a directory and a damaged file with the path', async () => {
    const missing = join(dir, 'nope.charnn');
    expect((await rejection(readCheckpoint(missing))).message).toBe(`checkpoint ${missing} does not exist`);
    expect((await rejection(readCheckpoint(dir))).message).toBe(`${dir} is a directory, not a checkpoint file`);

    const path = join(dir, 'model.charnn');
    const bytes = encodeCheckpoint(sampleCheckpoint());
    bytes[bytes.length - 10] ^= 0xff;
    await writeFile(path, bytes);
    const damaged = await rejection(readCheckpoint(path));
    expect(damaged).toBeInstanceOf(CheckpointFormatError);
    expect(damaged.message).toMatch(new RegExp(`^checkpoint ${path} is corrupted: checksum mismatch`));

    await writeFile(path, 'the quick brown fox');
    expect((await rejection(readCheckpoint(path))).message).toBe(`${path} is not a charnn checkpoint (it does not start with the CHARNN signature)`);
  });
});

describe('readCheckpointMeta', () => {
  it('returns the metadata and the tensor table without the data', async () => {
    const path = join(dir, 'model.charnn');
    await writeCheckpoint(path, sampleCheckpoint());
    const header = await readCheckpointMeta(path);
    expect(header.meta).toEqual(sampleCheckpoint().meta);
    expect(header.tensors).toEqual(
      sampleCheckpoint().tensors.map((t) => ({ name: t.name, shape: t.shape, length: t.data.length })),
    );
  });

  it('does not verify the checksum, but does check magic, version and length', async () => {
    const path = join(dir, 'model.charnn');
    const bytes = encodeCheckpoint(sampleCheckpoint());
    const damaged = Buffer.from(bytes);
    damaged[damaged.length - 10] ^= 0xff;
    await writeFile(path, damaged);
    expect((await readCheckpointMeta(path)).meta).toEqual(sampleCheckpoint().meta);

    await writeFile(path, bytes.subarray(0, bytes.length - 8));
    expect((await rejection(readCheckpointMeta(path))).message).toMatch(/is truncated: expected at least \d+ bytes/);

    const newer = Buffer.from(bytes);
    newer.writeUInt32LE(3, 8);
    await writeFile(path, newer);
    expect((await rejection(readCheckpointMeta(path))).message).toMatch(/uses format version 3/);

    await writeFile(path, 'not a checkpoint at all');
    expect((await rejection(readCheckpointMeta(path))).message).toMatch(/is not a charnn checkpoint/);

    await writeFile(path, bytes.subarray(0, 5));
    expect((await rejection(readCheckpointMeta(path))).message).toMatch(/is truncated/);

    expect((await rejection(readCheckpointMeta(join(dir, 'missing')))).message).toMatch(/does not exist/);
    expect((await rejection(readCheckpointMeta(dir))).message).toMatch(/is a directory/);
  });

  it('reads only the header: a file whose data section is unreadable still works', async () => {
    // A 1 GiB tensor declared in a sparse file: reading it all would take seconds and memory.
    const path = join(dir, 'big.charnn');
    const size = 2 ** 28;
    const header = Buffer.from(JSON.stringify({ tensors: [{ name: 'w', shape: [size], offset: 0, length: size }] }));
    const head = Buffer.alloc(Math.ceil((16 + header.length) / 8) * 8);
    Buffer.from('CHARNN\0\x1a', 'latin1').copy(head);
    head.writeUInt32LE(1, 8);
    head.writeUInt32LE(header.length, 12);
    header.copy(head, 16);
    await writeFile(path, head);
    await truncate(path, head.length + size * 4 + 4);
    const started = Date.now();
    expect((await readCheckpointMeta(path)).tensors).toEqual([{ name: 'w', shape: [size], length: size }]);
    expect(Date.now() - started).toBeLessThan(500);
  });
});

describe('isCheckpointFile', () => {
  it('sniffs the magic bytes', async () => {
    const path = join(dir, 'model.charnn');
    await writeCheckpoint(path, filled(1, 3));
    expect(isCheckpointFile(path)).toBe(true);
    await writeFile(join(dir, 'corpus.txt'), 'hello world, a corpus');
    expect(isCheckpointFile(join(dir, 'corpus.txt'))).toBe(false);
    await writeFile(join(dir, 'short'), 'CHARNN');
    expect(isCheckpointFile(join(dir, 'short'))).toBe(false);
    expect(isCheckpointFile(join(dir, 'missing'))).toBe(false);
    expect(isCheckpointFile(dir)).toBe(false);
  });
});

/** The real file system, except that one operation fails with the given code. */
function failingFileSystem(
  failAt: 'write' | 'sync' | 'rename',
  code: string,
  seen: { tempPath?: string; bytesWritten: number },
): AtomicFileSystem {
  const failure = () => Object.assign(new Error(`${code}: injected failure`), { code });
  return {
    ...nodeFileSystem,
    async createNew(path) {
      seen.tempPath = path;
      const file = await nodeFileSystem.createNew(path);
      return {
        async write(chunk) {
          // Fail part-way through the file, after some bytes really reached the temp file.
          if (failAt === 'write' && seen.bytesWritten > 100) throw failure();
          await file.write(chunk);
          seen.bytesWritten += chunk.length;
        },
        async sync() {
          if (failAt === 'sync') throw failure();
          await file.sync();
        },
        close: () => file.close(),
      };
    },
    async rename(from, to) {
      if (failAt === 'rename') throw failure();
      await nodeFileSystem.rename(from, to);
    },
  };
}

describe('atomic write', () => {
  const cases = [
    ['write', 'ENOSPC', 'no space left on device'],
    ['sync', 'EIO', 'input/output error'],
    ['rename', 'EACCES', 'permission denied'],
  ] as const;
  for (const [failAt, code, cause] of cases) {
    it(`keeps the old file and removes the temp file when ${failAt} fails with ${code}`, async () => {
      const path = join(dir, 'model.charnn');
      await writeCheckpoint(path, filled(1));
      const before = await readFile(path);
      const seen = { bytesWritten: 0 } as { tempPath?: string; bytesWritten: number };

      const error = await rejection(writeCheckpointWith(failingFileSystem(failAt, code, seen), path, filled(2)));
      expect(error.message).toBe(`cannot write checkpoint ${path}: ${cause}`);
      expect(seen.tempPath && dirname(seen.tempPath)).toBe(dir);
      expect(seen.bytesWritten).toBeGreaterThan(0);
      expect(existsSync(seen.tempPath!)).toBe(false);
      expect(await readdir(dir)).toEqual(['model.charnn']);
      expect(await readFile(path)).toEqual(before);
    });
  }

  it('suggests freeing space when the disk is full', async () => {
    const seen = { bytesWritten: 0 };
    const error = await rejection(writeCheckpointWith(failingFileSystem('write', 'ENOSPC', seen), join(dir, 'm.charnn'), filled(2)));
    expect(error.hint).toMatch(/free some disk space/);
  });

  it('fails cleanly when the parent is a file or does not exist', async () => {
    await writeFile(join(dir, 'afile'), 'x');
    const underFile = join(dir, 'afile', 'model.charnn');
    expect((await rejection(writeCheckpoint(underFile, filled(1)))).message).toBe(
      `cannot write checkpoint ${underFile}: a component of the path is not a directory`,
    );
    const missingDir = join(dir, 'no', 'such', 'model.charnn');
    expect((await rejection(writeCheckpoint(missingDir, filled(1)))).message).toBe(
      `cannot write checkpoint ${missingDir}: directory ${join(dir, 'no', 'such')} does not exist`,
    );
    expect(await readdir(dir)).toEqual(['afile']);
  });

  it('does not replace a directory at the destination, and cleans up', async () => {
    const target = join(dir, 'model.charnn');
    await mkdir(target);
    await writeFile(join(target, 'keep'), 'precious');
    const error = await rejection(writeCheckpoint(target, filled(1)));
    expect(error.message).toMatch(new RegExp(`^cannot write checkpoint ${target}: `));
    expect(await readdir(dir)).toEqual(['model.charnn']);
    expect(await readFile(join(target, 'keep'), 'utf8')).toBe('precious');
  });

  it('throws a plain Error for an invalid checkpoint before touching the disk', async () => {
    const path = join(dir, 'model.charnn');
    const bad = { meta: {}, tensors: [{ name: 'w', shape: [2], data: floats([1]) }] };
    await expect(writeCheckpoint(path, bad)).rejects.toThrow(/does not match/);
    await expect(writeCheckpoint(path, bad)).rejects.not.toBeInstanceOf(CharnnError);
    expect(await readdir(dir)).toEqual([]);
  });

  it('leaves exactly one writer\'s complete file after concurrent writes in one process', async () => {
    const path = join(dir, 'model.charnn');
    const inputs = Array.from({ length: 8 }, (_, i) => filled(i + 1, 5000 + 997 * i));
    await Promise.all(inputs.map((c) => writeCheckpoint(path, c)));
    const final = await readFile(path);
    const matches = inputs.filter((c) => encodeCheckpoint(c).equals(final));
    expect(matches).toHaveLength(1);
    expect(await readdir(dir)).toEqual(['model.charnn']);
  });

  it('keeps the file whole while two processes rewrite it and a reader watches', { timeout: 30_000 }, async () => {
    const moduleDir = await compileCheckpointModule(join(dir, 'build'));
    const work = join(dir, 'work');
    await mkdir(work);
    const path = join(work, 'model.charnn');
    const sizes = { 1: 200_000, 2: 3_000 } as const;
    const expected = [encodeCheckpoint(filled(1, sizes[1])), encodeCheckpoint(filled(2, sizes[2]))];
    await writeFile(path, expected[1]);

    const script = join(dir, 'build', 'writer.mjs');
    await writeFile(
      script,
      `import { writeCheckpoint } from ${JSON.stringify(`./${relative(join(dir, 'build'), moduleDir)}/index.js`)};
const [path, value, size] = process.argv.slice(2).map((a, i) => (i === 0 ? a : Number(a)));
const checkpoint = { meta: { writer: value }, tensors: [{ name: 'w', shape: [size], data: new Float32Array(size).fill(value) }] };
for (let i = 0; i < 40; i++) await writeCheckpoint(path, checkpoint);
`,
    );
    const children = [1, 2].map((v) => runNode(script, [path, String(v), String(sizes[v as 1 | 2])]));
    let running = true;
    const done = Promise.allSettled(children).finally(() => {
      running = false;
    });

    // Every read while the writers run must see one writer's complete file, never a mix.
    // Assert only after both children exit, so none outlives the test and its directory.
    let reads = 0;
    let torn = 0;
    while (running) {
      const bytes = await readFile(path);
      if (!expected.some((e) => e.equals(bytes))) torn++;
      reads++;
    }
    for (const result of await done) if (result.status === 'rejected') throw result.reason;
    expect(torn).toBe(0);
    expect(reads).toBeGreaterThan(0);
    const final = await readFile(path);
    expect(expected.filter((e) => e.equals(final))).toHaveLength(1);
    expect(await readdir(work)).toEqual(['model.charnn']);
  });
});

/**
 * Compiles src/checkpoint (and the errors and util modules it uses) to plain JavaScript, so a child
 * process can run the real code: Node 20 cannot load TypeScript itself.
 */
async function compileCheckpointModule(outDir: string): Promise<string> {
  const srcRoot = fileURLToPath(new URL('../src/', import.meta.url));
  const files = [
    'errors.ts',
    ...['visible-text.ts', 'crc32.ts', 'fs-errors.ts', 'temp-file.ts'].map((f) => `util/${f}`),
    ...(await readdir(join(srcRoot, 'checkpoint'))).filter((f) => f.endsWith('.ts')).map((f) => `checkpoint/${f}`),
  ];
  await mkdir(join(outDir, 'checkpoint'), { recursive: true });
  await mkdir(join(outDir, 'util'), { recursive: true });
  await writeFile(join(outDir, 'package.json'), '{"type":"module"}');
  for (const file of files) {
    const source = await readFile(join(srcRoot, file), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    });
    await writeFile(join(outDir, file.replace(/\.ts$/, '.js')), outputText);
  }
  return join(outDir, 'checkpoint');
}

function runNode(script: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer exited with ${code}: ${stderr}`))));
  });
}
