import { closeSync, openSync, readSync, writeSync } from 'node:fs';

/** Ids per buffered write and per block read back: 256 KiB, whatever the corpus size. */
export const SPILL_BLOCK_IDS = 1 << 16;

/**
 * A temporary file of Uint32 ids, written in order through a fixed buffer and then read back
 * in order. Native byte order: the file never outlives the process that wrote it.
 */
export class IdSpillWriter {
  private readonly fd: number;
  private readonly buffer = new Uint32Array(SPILL_BLOCK_IDS);
  private used = 0;
  /** Ids written so far. */
  count = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'wx');
  }

  push(id: number): void {
    this.buffer[this.used++] = id;
    this.count++;
    if (this.used === SPILL_BLOCK_IDS) this.flush();
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }

  private flush(): void {
    writeSync(this.fd, this.buffer, 0, this.used * 4);
    this.used = 0;
  }
}

/** Reads a spill file back in order, handing each block of at most SPILL_BLOCK_IDS ids to `visit` (the array is reused). */
export function readSpill(path: string, visit: (ids: Uint32Array) => void): void {
  const fd = openSync(path, 'r');
  const buffer = new Uint32Array(SPILL_BLOCK_IDS);
  try {
    for (let position = 0; ; ) {
      // A read can return fewer bytes than asked for, even mid-id; keep reading until the block is full.
      let bytes = 0;
      while (bytes < buffer.byteLength) {
        const n = readSync(fd, buffer, bytes, buffer.byteLength - bytes, position + bytes);
        if (n === 0) break;
        bytes += n;
      }
      if (bytes === 0) return;
      visit(buffer.subarray(0, bytes / 4));
      position += bytes;
    }
  } finally {
    closeSync(fd);
  }
}
