// Regenerates tests/fixtures/faceres/reference.json: what TensorFlow.js itself computes with the
// faceres graph model (@vladmandic/human 3.3.6, models/faceres.{json,bin}) for two fixed images,
// the reference of tests/train/tfjs_init_test.cc (LibTorch zoo model with the same weights).
//
//   mkdir -p /tmp/tfjs && cd /tmp/tfjs && npm install @tensorflow/tfjs@4.22.0
//   node /path/to/deepscan/scripts/make-faceres-fixture.mjs \
//     /path/to/deepscan/third_party/pretrained/faceres/faceres.json \
//     > /path/to/deepscan/tests/fixtures/faceres/reference.json
//
// @tensorflow/tfjs is resolved from the current directory (the scratch install above), so the
// repository needs no node_modules of its own. The cpu backend runs in float32.
//
// Input recipe (the C++ test rebuilds it exactly): image k in {0, 1}, 224 x 224 RGB uint8,
//   R, G, B at row y, column x = Pixel(k, y, x, 0..2) below (integers only);
// fed the way faceres was trained (HSE_FaceRec_tf, keras imagenet_utils.preprocess_input in
// "caffe" mode): channels reversed to B, G, R, then minus (103.939, 116.779, 123.68), NHWC float32.
// Outputs kept: "global_pooling/Mean" (the 1024 pooled features, all of them) and the spatial
// mean of "conv_pw_11_relu/clip_by_value" (the 512 features after the 11th block, what the
// truncated "mobilenetv1_s16" arch pools), per image.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const require = createRequire(join(process.cwd(), 'noop.js'));
const tf = require('@tensorflow/tfjs');

export function Pixel(k, y, x, c) {
  if (k === 0) {
    // smooth ramps with a soft checker: face-like low frequencies and some edges
    return (x + 2 * y + 40 * c + (((x >> 4) + (y >> 4)) % 2) * 48) % 256;
  }
  return (((x * y) >> 5) + 37 * c + (((x * 7) ^ (y * 3)) & 63)) % 256;
}

const SIZE = 224;
const MEANS_BGR = [103.939, 116.779, 123.68];

async function main() {
  const path = process.argv[2];
  if (!path) throw new Error('usage: node make-faceres-fixture.mjs PATH/faceres.json');
  const model = JSON.parse(readFileSync(path, 'utf8'));
  const specs = [];
  const chunks = [];
  for (const group of model.weightsManifest) {
    for (const p of group.paths) chunks.push(readFileSync(join(dirname(path), p)));
    specs.push(...group.weights);
  }
  const all = Buffer.concat(chunks);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const handler = {
    load: async () => ({
      modelTopology: model.modelTopology,
      format: model.format,
      generatedBy: model.generatedBy,
      convertedBy: model.convertedBy,
      signature: model.signature,
      weightSpecs: specs,
      weightData,
    }),
  };
  await tf.setBackend('cpu');
  const graph = await tf.loadGraphModel(handler);

  const input = new Float32Array(2 * SIZE * SIZE * 3);
  for (let k = 0; k < 2; ++k) {
    for (let y = 0; y < SIZE; ++y) {
      for (let x = 0; x < SIZE; ++x) {
        const base = ((k * SIZE + y) * SIZE + x) * 3;
        for (let c = 0; c < 3; ++c) {
          // BGR order: channel c of the graph's input is RGB channel 2 - c.
          input[base + c] = Pixel(k, y, x, 2 - c) - MEANS_BGR[c];
        }
      }
    }
  }
  const x = tf.tensor4d(input, [2, SIZE, SIZE, 3]);
  const [pooled, block11] = graph.execute(x, ['global_pooling/Mean', 'conv_pw_11_relu/clip_by_value']);
  const block11Mean = tf.mean(block11, [1, 2]);
  const round = (v) => Number(v.toPrecision(8));
  const rows = (t) => t.arraySync().map((r) => r.map(round));
  const out = {
    source: '@vladmandic/human@3.3.6 models/faceres.json, run by @tensorflow/tfjs ' + tf.version.tfjs +
            ' (cpu backend); regenerate with scripts/make-faceres-fixture.mjs',
    input: 'Pixel(k, y, x, c) of scripts/make-faceres-fixture.mjs, 224x224 RGB; BGR minus (103.939, 116.779, 123.68)',
    size: SIZE,
    global_pooling_mean: rows(pooled),
    conv_pw_11_mean: rows(block11Mean),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => { console.error(e); process.exit(1); });
