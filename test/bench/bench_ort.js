// bench_ort.js: times the BERT ONNX export with ONNX Runtime (Node binding).
//   node bench_ort.js NODE_MODULES_DIR MODEL.onnx BATCH SEQ THREADS RUNS WARMUP
// Prints one line: ort batch=.. seq=.. threads=.. runs=.. median_ms=.. min_ms=..
'use strict';
const path = require('path');

async function main() {
	const [modules, model, batch, seq, threads, runs, warmup] = process.argv.slice(2);
	const ort = require(path.resolve(modules, 'onnxruntime-node'));
	const B = +batch, T = +seq, R = +runs, W = +warmup;
	const session = await ort.InferenceSession.create(model, {
		intraOpNumThreads: +threads,
		interOpNumThreads: 1,
		executionMode: 'sequential',
		graphOptimizationLevel: 'all',
	});
	const ids = new BigInt64Array(B * T);
	const mask = new BigInt64Array(B * T).fill(1n);
	let seed = 12345;
	for (let i = 0; i < B * T; i++) {
		seed = (seed * 1103515245 + 12345) >>> 0;
		ids[i] = BigInt(i % T === 0 ? 101 : (seed >>> 8) % 30522);
	}
	const feeds = {
		input_ids: new ort.Tensor('int64', ids, [B, T]),
		attention_mask: new ort.Tensor('int64', mask, [B, T]),
	};
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
	console.log(`ort batch=${B} seq=${T} threads=${threads} runs=${R} median_ms=${median.toFixed(3)} min_ms=${ms[0].toFixed(3)} version=${ort.env.versions ? ort.env.versions.common : '?'}`);
}

main().catch((e) => { console.error('bench_ort: ' + (e && e.message ? e.message : e)); process.exit(1); });
