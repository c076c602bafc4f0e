import type { DumpContext, DumpWriter } from './dump-writer.js';
import { type DataOut, f32ArrayJSON } from './output.js';
import type { StateBlock } from './states.js';

/** The quantities grouped by layer, with each one's index in StateBlock.values. */
function byLayer(ctx: DumpContext): Array<{ layer: number; entries: Array<{ name: string; index: number }> }> {
  return ctx.layers.map((layer) => ({
    layer,
    entries: ctx.quantities.flatMap((q, index) => (q.layer === layer ? [{ name: q.name, index }] : [])),
  }));
}

/**
 * One JSON object per line and token:
 * {"t":0,"id":3,"token":"a","layers":[{"layer":0,"h":[...],"c":[...],"i":[...],...}]}
 * Numbers are the float32 values, written in the fewest digits that read back exactly.
 */
export class JsonlWriter implements DumpWriter {
  private readonly groups;
  private readonly H: number;

  constructor(
    ctx: DumpContext,
    private readonly out: DataOut,
  ) {
    this.groups = byLayer(ctx);
    this.H = ctx.model.config.hidden;
  }

  async block(b: StateBlock): Promise<void> {
    const H = this.H;
    let text = '';
    for (let t = 0; t < b.ids.length; t++) {
      const layers = this.groups.map(({ layer, entries }) => {
        let s = `{"layer":${layer}`;
        for (const { name, index } of entries) s += `,"${name}":${f32ArrayJSON(b.values[index], t * H, (t + 1) * H)}`;
        return s + '}';
      });
      text += `{"t":${b.start + t},"id":${b.ids[t]},"token":${JSON.stringify(b.tokens[t])},"layers":[${layers.join(',')}]}\n`;
    }
    await this.out.write(text);
  }

  async finish(): Promise<string[]> {
    await this.out.close();
    return [this.out.name];
  }
}

