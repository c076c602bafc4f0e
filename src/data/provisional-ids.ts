/**
 * First-pass token numbering: ids in first-seen order, with a count per id. Memory grows with
 * the number of distinct tokens only. The final vocabulary (see buildVocabulary) renumbers them.
 */
export interface ProvisionalIds {
  /** Distinct tokens seen so far. */
  readonly size: number;
  /** Token string -> how many times it was seen. */
  counts(): Map<string, number>;
  /** Token string of each provisional id, in id order. */
  tokens(): string[];
}

/** Numbers code points through a flat table covering all of Unicode (4.4 MB, no hashing). */
export class CodePointIds implements ProvisionalIds {
  private readonly idOf = new Int32Array(0x110000).fill(-1);
  private readonly codePoints: number[] = [];
  private readonly seen: number[] = [];

  get size(): number {
    return this.codePoints.length;
  }

  id(codePoint: number): number {
    let id = this.idOf[codePoint]!;
    if (id < 0) {
      id = this.codePoints.length;
      this.idOf[codePoint] = id;
      this.codePoints.push(codePoint);
      this.seen.push(0);
    }
    this.seen[id]!++;
    return id;
  }

  tokens(): string[] {
    return this.codePoints.map((codePoint) => String.fromCodePoint(codePoint));
  }

  counts(): Map<string, number> {
    return new Map(this.codePoints.map((codePoint, id) => [String.fromCodePoint(codePoint), this.seen[id]!]));
  }
}

export class StringIds implements ProvisionalIds {
  private readonly idOf = new Map<string, number>();
  private readonly seen: number[] = [];

  get size(): number {
    return this.idOf.size;
  }

  id(token: string): number {
    let id = this.idOf.get(token);
    if (id === undefined) {
      id = this.idOf.size;
      this.idOf.set(token, id);
      this.seen.push(0);
    }
    this.seen[id]!++;
    return id;
  }

  tokens(): string[] {
    return [...this.idOf.keys()];
  }

  counts(): Map<string, number> {
    return new Map([...this.idOf].map(([token, id]) => [token, this.seen[id]!]));
  }
}
