/**
 * numpy's legacy global generator, draw for draw: `np.random.seed(seed)` (MT19937's
 * init_genrand) followed by `np.random.randn(...)` (the Marsaglia polar method on 53-bit
 * doubles, each call yielding two normals and caching the second). min-char-rnn initialises
 * its weights with exactly these draws, so a vanilla RNN seeded with s starts from the weights
 * min_char_rnn.py starts from after np.random.seed(s) (Matsumoto & Nishimura 1998, "Mersenne
 * Twister"; numpy/random/src/legacy/legacy-distributions.c, legacy_gauss).
 */
export class NumpyRandom {
  private readonly mt = new Uint32Array(624);
  private index = 624;
  private cachedGauss: number | null = null;

  /** `seed`: an integer in [0, 2^32), as np.random.seed takes it. */
  constructor(seed: number) {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      // 1812433253 * prev + i, mod 2^32, without losing bits to float rounding.
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  /** MT19937's next tempered 32-bit output (genrand_int32). */
  nextU32(): number {
    const mt = this.mt;
    if (this.index >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = (mt[k] & 0x80000000) | (mt[(k + 1) % 624] & 0x7fffffff);
        mt[k] = mt[(k + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.index = 0;
    }
    let y = mt[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A double in [0, 1) from 53 bits, as numpy's random_sample. */
  next(): number {
    const a = this.nextU32() >>> 5;
    const b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** A standard normal, as np.random.randn / standard_normal. */
  normal(): number {
    if (this.cachedGauss !== null) {
      const g = this.cachedGauss;
      this.cachedGauss = null;
      return g;
    }
    let x1: number;
    let x2: number;
    let r2: number;
    do {
      x1 = 2 * this.next() - 1;
      x2 = 2 * this.next() - 1;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1 || r2 === 0);
    const f = Math.sqrt((-2 * Math.log(r2)) / r2);
    this.cachedGauss = f * x1;
    return f * x2;
  }
}
