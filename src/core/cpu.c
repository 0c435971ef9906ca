/*
 * cpu.c
 *	  CPUID, and the kernel tables of the instruction-set path in use (see
 *	  cpu.h).
 */
#include "cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_isa.h"
#include "gemm_isa.h"
#include "layers_isa.h"
#include "qgemm_isa.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define MMSA_X86 1
#endif

/*
 * The SIMDe build of the AVX-512 kernels, present only in binaries linked
 * with it (build/mmsa-simde, the unit tests): weak, so NULL elsewhere.
 */
extern const gemm_kernels gemm_kernels_avx512_simde __attribute__((weak));
extern const conv_kernels conv_kernels_avx512_simde __attribute__((weak));
extern const qgemm_kernels qgemm_kernels_avx512vnni_simde __attribute__((weak));

/* What CPUID says, read once. */
typedef struct cpu_features
{
	int			read;
	int			avx,
				avx2,
				fma,
				avx512f,
				avx512dq,
				avx512bw,
				avx512vl,
				avx512_vnni,
				avx512_bf16,
				avx_vnni,
				os_avx,			/* XCR0: the OS saves the YMM state */
				os_avx512;		/* XCR0: and the opmask and ZMM state */
} cpu_features;

static cpu_features cpu;

/* The path in use and its tables; NULL tables until the first choice. */
static mmsa_isa isa_current = MMSA_ISA_NONE;
static const gemm_kernels *gemm_current;
static const conv_kernels *conv_current;
static const layer_kernels *layer_current;
static const qgemm_kernels *qgemm_current;
static const char *label_current;

/* Set by mmsa_isa_use_tables: tables the tests put in place. */
static const gemm_kernels *gemm_override;
static const conv_kernels *conv_override;
static const char *label_override;
static const qgemm_kernels *qgemm_override;

#ifdef MMSA_X86
static unsigned long long
read_xcr0(void)
{
	unsigned int eax,
				edx;

	__asm__ volatile ("xgetbv" : "=a" (eax), "=d" (edx) : "c" (0));
	return ((unsigned long long) edx << 32) | eax;
}
#endif

static const cpu_features *
cpu_read(void)
{
#ifdef MMSA_X86
	unsigned int eax,
				ebx,
				ecx,
				edx,
				max_leaf;

	if (cpu.read)
		return &cpu;
	max_leaf = __get_cpuid_max(0, NULL);
	if (max_leaf >= 1 && __get_cpuid(1, &eax, &ebx, &ecx, &edx))
	{
		int			osxsave = (ecx >> 27) & 1;

		cpu.avx = (ecx >> 28) & 1;
		cpu.fma = (ecx >> 12) & 1;
		if (osxsave)
		{
			unsigned long long xcr0 = read_xcr0();

			cpu.os_avx = (xcr0 & 0x6) == 0x6;
			cpu.os_avx512 = (xcr0 & 0xE6) == 0xE6;
		}
	}
	if (max_leaf >= 7)
	{
		__cpuid_count(7, 0, eax, ebx, ecx, edx);
		cpu.avx2 = (ebx >> 5) & 1;
		cpu.avx512f = (ebx >> 16) & 1;
		cpu.avx512dq = (ebx >> 17) & 1;
		cpu.avx512bw = (ebx >> 30) & 1;
		cpu.avx512vl = (ebx >> 31) & 1;
		cpu.avx512_vnni = (ecx >> 11) & 1;
		if (eax >= 1)
		{
			__cpuid_count(7, 1, eax, ebx, ecx, edx);
			cpu.avx_vnni = (eax >> 4) & 1;
			cpu.avx512_bf16 = (eax >> 5) & 1;
		}
	}
#endif
	cpu.read = 1;
	return &cpu;
}

int
mmsa_cpu_supports(mmsa_isa isa)
{
	const cpu_features *f = cpu_read();
	int			avx2 = f->avx && f->avx2 && f->fma && f->os_avx;

	switch (isa)
	{
		case MMSA_ISA_AVX2:
			return avx2;
		case MMSA_ISA_AVXVNNI:
			return avx2 && f->avx_vnni;
		case MMSA_ISA_AVX512:
			return avx2 && f->avx512f && f->avx512bw && f->avx512vl && f->os_avx512;
		case MMSA_ISA_AVX512_SIMDE:
			return avx2 && &gemm_kernels_avx512_simde != NULL && &conv_kernels_avx512_simde != NULL &&
				&qgemm_kernels_avx512vnni_simde != NULL;
		case MMSA_ISA_AUTO:
			return 1;
		case MMSA_ISA_NONE:
			return 0;
	}
	return 0;
}

int
mmsa_cpu_has_vnni(int bits)
{
	if (bits == 512)
		return mmsa_cpu_supports(MMSA_ISA_AVX512) && cpu_read()->avx512_vnni;
	return mmsa_cpu_supports(MMSA_ISA_AVXVNNI);
}

mmsa_isa
mmsa_cpu_best(void)
{
	if (mmsa_cpu_supports(MMSA_ISA_AVX512))
		return MMSA_ISA_AVX512;
	if (mmsa_cpu_supports(MMSA_ISA_AVXVNNI))
		return MMSA_ISA_AVXVNNI;
	if (mmsa_cpu_supports(MMSA_ISA_AVX2))
		return MMSA_ISA_AVX2;
	return MMSA_ISA_NONE;
}

const char *
mmsa_isa_name(mmsa_isa isa)
{
	switch (isa)
	{
		case MMSA_ISA_AVX2:
			return "avx2";
		case MMSA_ISA_AVXVNNI:
			return "avx-vnni";
		case MMSA_ISA_AVX512:
			return "avx512";
		case MMSA_ISA_AVX512_SIMDE:
			return "avx512-simde";
		case MMSA_ISA_AUTO:
			return "auto";
		case MMSA_ISA_NONE:
			return "none";
	}
	return "none";
}

mmsa_status
mmsa_isa_parse(const char *name, mmsa_isa *isa, mmsa_error *err)
{
	static const mmsa_isa all[] = {MMSA_ISA_AUTO, MMSA_ISA_AVX2, MMSA_ISA_AVXVNNI, MMSA_ISA_AVX512,
	MMSA_ISA_AVX512_SIMDE};

	for (size_t i = 0; name && i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(name, mmsa_isa_name(all[i])) == 0)
		{
			*isa = all[i];
			return MMSA_OK;
		}
	return mmsa_set_error(err, MMSA_ERR_INVALID,
						  "unknown instruction-set path \"%s\" (expected auto, avx2, avx-vnni or avx512)",
						  name ? name : "");
}

mmsa_status
mmsa_isa_set(mmsa_isa isa, mmsa_error *err)
{
	char		flags[256];

	if (isa == MMSA_ISA_AUTO)
		isa = mmsa_cpu_best();
	if (isa == MMSA_ISA_NONE || !mmsa_cpu_supports(isa))
	{
		mmsa_cpu_flags(flags, sizeof(flags));
		if (!mmsa_cpu_supports(MMSA_ISA_AVX2))
			return mmsa_set_error(err, MMSA_ERR_UNSUPPORTED,
								  "this CPU lacks AVX2 and FMA, which mmsa needs (its flags: %s)",
								  flags[0] ? flags : "none of avx2, fma, avx512f");
		if (isa == MMSA_ISA_AVX512_SIMDE)
			return mmsa_set_error(err, MMSA_ERR_UNSUPPORTED,
								  "the avx512-simde path exists only in test builds linked with SIMDe");
		return mmsa_set_error(err, MMSA_ERR_UNSUPPORTED,
							  "this CPU cannot run the %s path (its flags: %s)",
							  mmsa_isa_name(isa), flags);
	}
#ifdef MMSA_X86
	if (isa == MMSA_ISA_AVX512)
	{
		gemm_current = &gemm_kernels_avx512;
		conv_current = &conv_kernels_avx512;
		layer_current = &layer_kernels_avx512;
		/* int8: AVX-512 without VNNI (Skylake-SP) keeps a 256-bit kernel */
		qgemm_current = cpu.avx512_vnni ? &qgemm_kernels_avx512vnni :
			cpu.avx_vnni ? &qgemm_kernels_avxvnni : &qgemm_kernels_avx2;
	}
	else if (isa == MMSA_ISA_AVX512_SIMDE)
	{
		/* layer_kernels.h has no intrinsics: nothing of it to emulate */
		gemm_current = &gemm_kernels_avx512_simde;
		conv_current = &conv_kernels_avx512_simde;
		layer_current = &layer_kernels_avx2;
		qgemm_current = &qgemm_kernels_avx512vnni_simde;
	}
	else
	{
		gemm_current = &gemm_kernels_avx2;
		conv_current = &conv_kernels_avx2;
		layer_current = &layer_kernels_avx2;
		qgemm_current = isa == MMSA_ISA_AVXVNNI ? &qgemm_kernels_avxvnni : &qgemm_kernels_avx2;
	}
#endif
	isa_current = isa;
	label_current = mmsa_isa_name(isa);
	return MMSA_OK;
}

mmsa_status
mmsa_isa_init(mmsa_error *err)
{
	const char *env;
	mmsa_isa	isa = MMSA_ISA_AUTO;
	mmsa_status status;

	if (isa_current != MMSA_ISA_NONE)
		return MMSA_OK;
	env = getenv("MMSA_ISA");
	if (env && env[0] && (status = mmsa_isa_parse(env, &isa, err)) != MMSA_OK)
		return status;
	return mmsa_isa_set(isa, err);
}

mmsa_isa
mmsa_isa_current(void)
{
	return isa_current;
}

const char *
mmsa_isa_current_label(void)
{
	if (label_override)
		return label_override;
	return label_current ? label_current : "generic";
}

void
mmsa_cpu_flags(char *buf, size_t len)
{
	const cpu_features *f = cpu_read();
	const struct
	{
		int			on;
		const char *name;
	}			flags[] = {
		{f->avx, "avx"}, {f->avx2, "avx2"}, {f->fma, "fma"},
		{f->avx512f, "avx512f"}, {f->avx512dq, "avx512dq"},
		{f->avx512bw, "avx512bw"}, {f->avx512vl, "avx512vl"},
		{f->avx512_vnni, "avx512_vnni"}, {f->avx512_bf16, "avx512_bf16"},
		{f->avx_vnni, "avx_vnni"},
		{f->avx512f && !f->os_avx512, "(AVX-512 state not enabled by the OS)"}};
	size_t		used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (flags[i].on && used < len)
			used += snprintf(buf + used, len - used, "%s%s", used ? " " : "", flags[i].name);
}

void
mmsa_isa_use_tables(const struct gemm_kernels *gemm, const struct conv_kernels *conv,
					const char *label)
{
	gemm_override = gemm;
	conv_override = conv;
	label_override = gemm ? label : NULL;
}

/*
 * The tables of the path in use.  A product run before any model load
 * (the unit tests') makes the first choice here; where that fails (no
 * AVX2), the portable C kernels run: the model loaders call mmsa_isa_init
 * themselves and so report the error instead.
 */
static void
ensure_chosen(void)
{
	if (gemm_current)
		return;
	if (mmsa_isa_init(NULL) != MMSA_OK || !gemm_current)
	{
		gemm_current = &gemm_kernels_generic;
		conv_current = &conv_kernels_generic;
		layer_current = &layer_kernels_generic;
		qgemm_current = &qgemm_kernels_generic;
		label_current = "generic";
	}
}

const gemm_kernels *
mmsa_gemm_kernels(void)
{
	if (gemm_override)
		return gemm_override;
	ensure_chosen();
	return gemm_current;
}

const conv_kernels *
mmsa_conv_kernels(void)
{
	if (conv_override)
		return conv_override;
	ensure_chosen();
	return conv_current;
}

const layer_kernels *
mmsa_layer_kernels(void)
{
	ensure_chosen();
	return layer_current;
}

void
mmsa_isa_use_qgemm(const struct qgemm_kernels *q)
{
	qgemm_override = q;
}

const qgemm_kernels *
mmsa_qgemm_kernels(void)
{
	if (qgemm_override)
		return qgemm_override;
	ensure_chosen();
	return qgemm_current;
}

const char *
mmsa_int8_kernels_label(void)
{
	return mmsa_qgemm_kernels()->name;
}
