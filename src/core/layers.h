/*
 * layers.h
 *	  Forward passes of the neural-network layers, one function per layer,
 *	  on plain float arrays (in the manner of llm.c).
 *
 * Every array is row-major and dense; shapes are given in the comments with
 * B = batch, T = sequence length, C = channels, OC = output channels,
 * NH = attention heads, N = any number of rows.  Weights are used where they
 * lie (for instance inside a mapped safetensors file) and never copied;
 * Linear weights have the PyTorch layout (OC, C).  None of these functions
 * fails or prints, so that a later `*_backward` can sit beside each one and
 * other models (the fusion heads) can reuse them; the products of training
 * run on sgemm.c, which keeps work space per thread (sgemm.h).
 *
 * Functions that take a pool split their work between its threads (NULL:
 * the calling thread alone), with the same results for any number of
 * threads.
 */
#ifndef MMSA_LAYERS_H
#define MMSA_LAYERS_H

#include <stdint.h>

#include "threadpool.h"

/*
 * Token embeddings: word + position + token type, as in Hugging Face
 * BertEmbeddings (before its LayerNorm).  Positions are 0..T-1.
 * out: (B,T,C); ids: (B,T); token_types: (B,T) or NULL for all zeros;
 * wte: (V,C); wpe: (maxT,C) with T <= maxT; wtt: (TV,C).
 * ids and token_types must already be checked to be in range.
 */
void		embeddings_forward(float *out, const int32_t *ids,
							   const int32_t *token_types,
							   const float *wte, const float *wpe,
							   const float *wtt, int B, int T, int C);

/*
 * Layer normalization over the last dimension, with a learned scale and
 * shift; out may equal inp.
 * out, inp: (N,C); weight, bias: (C)
 */
void		layernorm_forward(float *out, const float *inp,
							  const float *weight, const float *bias,
							  int N, int C, float eps);

/*
 * Fully connected layer y = x W^T + b (PyTorch nn.Linear) by one product
 * on sgemm.c.
 * out: (N,OC); inp: (N,C); weight: (OC,C); bias: (OC) or NULL.
 * out must not overlap inp.
 */
void		matmul_forward(mmsa_pool *pool, float *out, const float *inp,
						   const float *weight, const float *bias,
						   int N, int C, int OC);

/*
 * Output columns [o0, o1) of y = x W^T + b by CBLAS (OpenBLAS) sgemm
 * (out and weight rows o0..o1-1, bias[o0..o1-1]), so that callers can
 * split one product between threads: the BERT inference path that serves
 * unpacked weights (bert.c).
 * out: (N,OC) of which columns o0..o1-1 are written.
 */
void		matmul_forward_cols(float *out, const float *inp,
								const float *weight, const float *bias,
								int N, int C, int OC, int o0, int o1);

/*
 * GELU with the exact erf form, 0.5 x (1 + erf(x / sqrt 2)), as Hugging Face
 * "gelu" and torch.nn.functional.gelu; out may equal inp.
 * out, inp: (N)
 */
void		gelu_forward(float *out, const float *inp, long N);

/*
 * Elementwise tanh; out may equal inp.
 * out, inp: (N)
 */
void		tanh_forward(float *out, const float *inp, long N);

/*
 * Residual connection out = a + b; out may equal a or b.
 * out, a, b: (N)
 */
void		residual_forward(float *out, const float *a, const float *b, long N);

/*
 * Softmax of each row, in place, subtracting the row maximum first.
 * x: (N,C)
 */
void		softmax_forward(float *x, int N, int C);

/*
 * The additive attention mask of Hugging Face BertModel: 0 where mask is 1
 * and the most negative float where it is 0 ((1 - mask) * finfo.min).
 * Mask NULL means every position is attended.
 * out: (B,T); mask: (B,T) or NULL
 */
void		attention_mask_forward(float *out, const int32_t *mask, int B, int T);

/*
 * Multi-head scaled dot-product self-attention (the core of Hugging Face
 * BertSelfAttention, between the q/k/v projections and the output
 * projection).  For each batch row b and head h, with hs = C / NH:
 *	 att = softmax(q_bh k_bh^T / sqrt(hs) + addmask_b)   (T,T)
 *	 out_bh = att v_bh                                   (T,hs)
 * Heads are the hs-wide column blocks of q, k, v and out, so out comes back
 * with the heads already merged.  The QK^T and PV products are CBLAS
 * (OpenBLAS) sgemms, as in bert.c's unpacked path.
 * out: (B,T,C); q, k, v: (B,T,C); addmask: (B,T) from attention_mask_forward;
 * att: scratch (NH,T,T), holds the probabilities of the last batch row.
 */
void		attention_forward(float *out, const float *q, const float *k,
							  const float *v, const float *addmask,
							  float *att, int B, int T, int C, int NH);

/*
 * One (batch row, head) of attention_forward, so that callers can spread
 * the heads over threads.  out, q, k, v point at the head's first element
 * (row b*T, column h*hs) of (B,T,C) arrays whose rows are C floats apart.
 * out_h, q_h, k_h, v_h: (T,hs) with row stride C; addmask: (T) of row b;
 * att: scratch (T,T), left holding the probabilities.
 */
void		attention_head_forward(float *out, const float *q, const float *k,
								   const float *v, const float *addmask,
								   float *att, int T, int C, int hs);

/* ---------------------------------------------------------------------
 * Training: forwards that keep what the backward passes need, and the
 * backward passes.  As in llm.c, every backward ADDS (+=) into the input
 * gradient and the parameter gradients it is given (zero them first), so
 * that a tensor used twice (a residual stream, tied weights) collects both
 * contributions.  A NULL gradient pointer skips that gradient.
 * ---------------------------------------------------------------------
 */

/*
 * Gradient of embeddings_forward: dwte[ids] += dout, dwpe[t] += dout,
 * dwtt[token_types] += dout.  Rows whose id is pad_id get no gradient in
 * dwte (nn.Embedding(padding_idx=pad_id), as Hugging Face BertEmbeddings);
 * pad_id < 0 for none.
 * dwte: (V,C); dwpe: (maxT,C); dwtt: (TV,C); dout: (B,T,C)
 */
void		embeddings_backward(float *dwte, float *dwpe, float *dwtt,
								const float *dout, const int32_t *ids,
								const int32_t *token_types, int pad_id,
								int B, int T, int C);

/*
 * layernorm_forward (same values) that also keeps each row's mean and
 * 1/sqrt(var + eps) for layernorm_backward.
 * out, inp: (N,C); mean, rstd: (N); out may equal inp.
 */
void		layernorm_forward_train(float *out, float *mean, float *rstd,
									const float *inp, const float *weight,
									const float *bias, int N, int C, float eps);

/*
 * Gradient of layernorm_forward.
 * dinp, dout, inp: (N,C); dweight, dbias, weight: (C); mean, rstd: (N)
 */
void		layernorm_backward(float *dinp, float *dweight, float *dbias,
							   const float *dout, const float *inp,
							   const float *weight, const float *mean,
							   const float *rstd, int N, int C);

/*
 * Gradient of matmul_forward (y = x W^T + b), by two products on sgemm.c:
 * dinp += dout W, dweight += dout^T inp, dbias += column sums of dout.
 * dinp, inp: (N,C); dweight, weight: (OC,C); dbias: (OC); dout: (N,OC)
 */
void		matmul_backward(mmsa_pool *pool, float *dinp, float *dweight, float *dbias,
							const float *dout, const float *inp,
							const float *weight, int N, int C, int OC);

/*
 * Gradient of gelu_forward, the derivative of the erf form:
 * d/dx [x Phi(x)] = Phi(x) + x phi(x), with Phi from the same erf
 * approximation as the forward (absolute error below 4e-7).  Adds into
 * dinp, which must not overlap dout.
 * dinp, inp, dout: (N)
 */
void		gelu_backward(float *dinp, const float *inp, const float *dout, long N);

/*
 * Gradient of tanh_forward from its output: dinp += dout (1 - out^2).
 * dinp, out, dout: (N)
 */
void		tanh_backward(float *dinp, const float *out, const float *dout, long N);

/*
 * Gradient of residual_forward: da += dout, db += dout.
 * da, db, dout: (N)
 */
void		residual_backward(float *da, float *db, const float *dout, long N);

/*
 * Inverted dropout: out[i] = inp[i] / (1 - p) where element i is kept, 0
 * where dropped.  Element i is dropped when dropout_uniform(seed, i) < p, a
 * counter-based draw (splitmix64 of seed and i), so the mask needs no
 * storage: dropout_backward recomputes it from the same seed, and it does
 * not depend on how work is split between threads.  p = 0 copies.
 * out, inp: (N); out may equal inp.
 */
float		dropout_uniform(uint64_t seed, uint64_t i);
void		dropout_forward(float *out, const float *inp, float p,
							uint64_t seed, long N);

/*
 * Gradient of dropout_forward with the same p and seed:
 * dinp += dout / (1 - p) where kept.  dinp, dout: (N)
 */
void		dropout_backward(float *dinp, const float *dout, float p,
							 uint64_t seed, long N);

/*
 * The same two over elements lo .. hi-1 only (out, inp, dinp, dout point at
 * element 0), for callers that split the elements between threads.
 */
void		dropout_forward_range(float *out, const float *inp, float p,
								  uint64_t seed, long lo, long hi);
void		dropout_backward_range(float *dinp, const float *dout, float p,
								   uint64_t seed, long lo, long hi);

/*
 * A seed for one dropout site (a layer and a place in it) from the seed of
 * a training step, so that sites draw independent masks.
 */
uint64_t	dropout_site_seed(uint64_t step_seed, uint64_t site);

/*
 * attention_forward for training: keeps the probabilities of every batch
 * row and head, and applies dropout with probability p to them before the
 * product with v (as Hugging Face BertSelfAttention).  Element
 * ((b*NH + h)*T + t)*T + s of att is dropped by dropout_uniform(seed, that
 * index).  With p = 0 the output is attention_forward's (computed on
 * sgemm.c instead of OpenBLAS, so equal to float rounding).  The (batch
 * row, head) pairs are split between the pool's threads.
 * out, q, k, v: (B,T,C); addmask: (B,T); att: (B,NH,T,T) probabilities
 * (before dropout); scratch: (threads,T,T), threads the pool's size (1
 * without one).
 */
void		attention_forward_train(mmsa_pool *pool, float *out, float *att, float *scratch,
									const float *q, const float *k,
									const float *v, const float *addmask,
									int B, int T, int C, int NH,
									float p, uint64_t seed);

/*
 * Gradient of attention_forward_train with the same p and seed, through
 * the dropout, the masked softmax and both products.  Masked (padding)
 * keys have probability 0 and so get no gradient.
 * dq, dk, dv, dout, q, k, v: (B,T,C); att: (B,NH,T,T) from the forward;
 * scratch: (threads,2,T,T), threads as for attention_forward_train.
 */
void		attention_backward(mmsa_pool *pool, float *dq, float *dk, float *dv, float *scratch,
							   const float *dout, const float *q,
							   const float *k, const float *v,
							   const float *att, int B, int T, int C, int NH,
							   float p, uint64_t seed);

/*
 * Softmax cross-entropy over V classes for N rows: probs = softmax(logits)
 * and the loss sum_n w[y_n] (-log probs[n, y_n]) / sum_n w[y_n], the mean
 * of torch.nn.CrossEntropyLoss (with weight=w; w NULL for all ones, which
 * is the plain mean).  Rows with a negative target (-100, ignore_index)
 * are left out.  Returns 0 when no row counts.  probs may equal logits.
 * probs, logits: (N,V); targets: (N) < V; class_weights: (V) or NULL
 */
float		crossentropy_forward(float *probs, const float *logits,
								 const int32_t *targets,
								 const float *class_weights, int N, int V);

/*
 * Gradient of crossentropy_forward times dloss:
 * dlogits[n] += dloss w[y_n] / sum w (probs[n] - onehot(y_n)).
 * dlogits, probs: (N,V)
 */
void		crossentropy_backward(float *dlogits, const float *probs,
								  const int32_t *targets,
								  const float *class_weights, int N, int V,
								  float dloss);

#endif
