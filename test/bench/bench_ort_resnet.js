// bench_ort_resnet.js: times the ResNet-50 ONNX export with ONNX Runtime (Node binding).
//   node bench_ort_resnet.js NODE_MODULES_DIR MODEL.onnx BATCH THREADS RUNS WARMUP
// Prints one line: ort batch=.. threads=.. runs=.. median_ms=.. min_ms=.. ms_per_image=..
'use strict';
const path = require('path');

async function main() {
	const [modules, model, batch, threads, runs, warmup] = process.argv.slice(2);
	const ort = require(path.resolve(modules, 'onnxruntime-node'));
	const B = +batch, R = +runs, W = +warmup;
	const session = await ort.InferenceSession.create(model, {
		intraOpNumThreads: +threads,
		interOpNumThreads: 1,
		executionMode: 'sequential',
		graphOptimizationLevel: 'all',
	});
	const x = new Float32Array(B * 3 * 224 * 224);
	let seed = 12345;
	for (let i = 0; i < x.length; i++) {
		seed = (seed * 1103515245 + 12345) >>> 0;
		x[i] = ((seed >>> 8) & 0xffff) / 32768 - 1;
	}
	const feeds = { input: new ort.Tensor('float32', x, [B, 3, 224, 224]) };
	const ms = [];
	for (let i = 0; i < W + R; i++) {
		const t0 = process.hrtime.bigint();
		await session.run(feeds);
		const t1 = process.hrtime.bigint();
		if (i >= W)
			ms.push(Number(t1 - t0) / 1e6);
	}
	ms.sort((a, b) => a - b);
	const median = R % 2 ? ms[(R - 1) / 2] : (ms[R / 2 - 1] + ms[R / 2]) / 2;
	console.log(`ort batch=${B} threads=${threads} runs=${R} median_ms=${median.toFixed(3)} min_ms=${ms[0].toFixed(3)} ms_per_image=${(median / B).toFixed(3)} version=${ort.env.versions ? ort.env.versions.common : '?'}`);
}

main().catch((e) => { console.error('bench_ort_resnet: ' + (e && e.message ? e.message : e)); process.exit(1); });
