// ort_profile_resnet.js: ONNX Runtime's own profile of the ResNet-50 export:
// the time of each Conv node, in graph order (the order of `mmsa bench
// resnet --profile`: the stem, then each block's conv1, conv2, downsample,
// conv3), in milliseconds per image over RUNS runs after one warm-up run.
//   node ort_profile_resnet.js NODE_MODULES_DIR MODEL.onnx BATCH THREADS RUNS TMP_PREFIX
// Prints one line per Conv node: "conv INDEX MS_PER_IMAGE NAME".
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
	const [modules, model, batch, threads, runs, prefix] = process.argv.slice(2);
	const ort = require(path.resolve(modules, 'onnxruntime-node'));
	const B = +batch, R = +runs;
	const session = await ort.InferenceSession.create(model, {
		intraOpNumThreads: +threads,
		interOpNumThreads: 1,
		executionMode: 'sequential',
		graphOptimizationLevel: 'all',
		enableProfiling: true,
		profileFilePrefix: prefix,
	});
	const x = new Float32Array(B * 3 * 224 * 224).fill(0.5);
	const feeds = { input: new ort.Tensor('float32', x, [B, 3, 224, 224]) };
	for (let i = 0; i < R + 1; i++)
		await session.run(feeds);
	session.endProfiling();

	// the profile file: PREFIX_<date>.json, the newest one
	const dir = path.dirname(prefix), base = path.basename(prefix);
	const files = fs.readdirSync(dir).filter((f) => f.startsWith(base) && f.endsWith('.json'))
		.map((f) => path.join(dir, f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
	if (files.length === 0)
		throw new Error('no profile file written');
	const events = JSON.parse(fs.readFileSync(files[0], 'utf8'));
	files.forEach((f) => fs.unlinkSync(f));

	// leave out the nodes inside the first (warm-up) run
	const first = events.filter((e) => e.name === 'model_run').sort((a, b) => a.ts - b.ts)[0];
	const sums = new Map();
	for (const e of events) {
		if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !e.args || e.args.op_name !== 'Conv')
			continue;
		if (first && e.ts >= first.ts && e.ts <= first.ts + first.dur)
			continue;
		const name = e.name.slice(0, -'_kernel_time'.length);
		sums.set(name, (sums.get(name) || 0) + e.dur);
	}
	let i = 0;
	for (const [name, us] of sums)
		console.log(`conv ${i++} ${(us / 1000 / R / B).toFixed(3)} ${name}`);
}

main().catch((e) => { console.error('ort_profile_resnet: ' + (e && e.message ? e.message : e)); process.exit(1); });
