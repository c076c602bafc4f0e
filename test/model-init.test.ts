import { describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../src/backend/reference.js';
import { CELL_NAMES } from '../src/model/cells/index.js';
import { Model } from '../src/model/model.js';
import { parameterCount } from '../src/model/params.js';
import { NumpyRandom } from '../src/util/numpy-random.js';

describe('NumpyRandom: numpy legacy generator, draw for draw', () => {
  it('np.random.seed(1); np.random.randn(5)', () => {
    const r = new NumpyRandom(1);
    // Printed by numpy 2.4.6 (the values are those of every numpy since 1.0).
    expect([0, 1, 2, 3, 4].map(() => r.normal())).toEqual([
      1.6243453636632417, -0.6117564136500754, -0.5281717522634557, -1.0729686221561705, 0.8654076293246785,
    ]);
  });

  it('np.random.seed(7); np.random.random_sample() and a seed at the top of the range', () => {
    expect(new NumpyRandom(7).next()).toBe(0.07630828937395717);
    const r = new NumpyRandom(0xffffffff);
    for (let i = 0; i < 1000; i++) expect(r.nextU32()).toBeLessThanOrEqual(0xffffffff);
  });
});

describe('vanilla RNN initialisation is min-char-rnn\'s', () => {
  // np.random.seed(7); Wxh = randn(4, 3) * 0.01; Whh = randn(4, 4) * 0.01; Why = randn(3, 4) * 0.01
  // (H = 4, V = 3), as float32 and transposed to charnn's [in, out] layouts.
  const Wx = [
    0.01690525747835636, 0.004075163044035435, -8.903858542907983e-6, 0.0060049849562346935, -0.00465937377884984,
    -0.007889230735599995, -0.01754724234342575, -0.006254289764910936, 0.00032820162596181035, 2.0655728803831153e-5,
    0.010176580399274826, -0.0017154825618490577,
  ];
  const Wh = [
    0.005052993539720774, 0.0055458033457398415, 0.016506996005773544, -0.00045386029523797333, -0.0026135642547160387,
    0.0012388090835884213, 0.001543355407193303, -0.014506787061691284, -0.002427490893751383, 0.0027445992454886436,
    -0.0038713994435966015, -0.004052278585731983, -0.014532414264976978, -0.015265244990587234, 0.02029072307050228,
    -0.022883150726556778,
  ];
  const outW = [
    0.010493965819478035, -0.01651075668632984, -0.012042198330163956, -0.004164743237197399, 0.005354293622076511,
    0.014619756489992142, -0.007425535470247269, -0.02064414881169796, 0.01766160875558853, 0.01072470098733902,
    -0.006621593609452248, -0.003294137539342046,
  ];

  it('seed 7 gives the weights min_char_rnn.py draws after np.random.seed(7), biases zero', async () => {
    const be = new ReferenceBackend();
    const m = Model.create(be, { cell: 'rnn', vocabSize: 3, hidden: 4, layers: 1, embed: 0, dropout: 0 }, 7);
    const read = async (name: string) => Array.from(await be.read(m.params.get(name)));
    expect(await read('layers.0.Wx')).toEqual(Wx);
    expect(await read('layers.0.Wh')).toEqual(Wh);
    expect(await read('out.W')).toEqual(outW);
    expect(await read('layers.0.b')).toEqual([0, 0, 0, 0]);
    expect(await read('out.b')).toEqual([0, 0, 0]);
  });
});

describe('parameter counts', () => {
  it('parameterCount, computed from the cell specs without building, is the built model\'s count (tied models have no out.W)', () => {
    const be = new ReferenceBackend('f32');
    for (const cell of CELL_NAMES) {
      for (const [layers, embed, tie] of [[1, 0, false], [3, 0, false], [2, 6, false], [2, 6, true]] as const) {
        const config = { cell, vocabSize: 11, hidden: 6, layers, embed, dropout: 0, tie };
        const built = Model.create(be, config, 1).params.count();
        expect(parameterCount(config), `${cell} ${layers} layers, embed ${embed}${tie ? ', tied' : ''}`).toBe(built);
      }
      // Tying drops exactly the [H, V] output matrix.
      const untied = { cell, vocabSize: 11, hidden: 6, layers: 2, embed: 6, dropout: 0 };
      expect(parameterCount(untied) - parameterCount({ ...untied, tie: true })).toBe(6 * 11);
    }
  });
});
