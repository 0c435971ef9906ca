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
 * allocates, fails or prints, so that a later `*_backward` can sit beside
 * each one and other models (the fusion heads) can reuse them.
 */
#ifndef MMSA_LAYERS_H
#define MMSA_LAYERS_H

#include <stdint.h>

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
 * Fully connected layer y = x W^T + b (PyTorch nn.Linear) by one sgemm.
 * out: (N,OC); inp: (N,C); weight: (OC,C); bias: (OC) or NULL.
 * out must not overlap inp.
 */
void		matmul_forward(float *out, const float *inp,
						   const float *weight, const float *bias,
						   int N, int C, int OC);

/*
 * Output columns [o0, o1) of matmul_forward (out and weight rows o0..o1-1,
 * bias[o0..o1-1]), so that callers can split one product between threads.
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
 * with the heads already merged.  The QK^T and PV products are sgemms.
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

#endif
