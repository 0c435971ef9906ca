/*
 * main.c
 *	  The `mmsa` command-line tool: dispatches to one function per
 *	  subcommand (src/cli/cmd_*.c).  It links the same numeric core as the
 *	  PostgreSQL extension.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct mmsa_command
{
	const char *name;
	int			(*run) (int argc, char **argv);
	const char *summary;
} mmsa_command;

static const mmsa_command commands[] = {
	{"tokenize", cmd_tokenize, "WordPiece token ids of texts"},
	{"embed", cmd_embed, "BERT hidden states and pooled vector of texts"},
	{"bench", cmd_bench, "time forward passes (see test/bench/run-bench.sh)"},
	{"decode", cmd_decode, "decode and preprocess an image file"},
	{"classify", cmd_classify, "ResNet-50 ImageNet top-k classes of images"},
	{"convert-tfjs", cmd_convert_tfjs, "convert Keras ResNet-50 (TensorFlow.js) weights"},
	{"features", cmd_features, "cache ResNet-50 features (F_I, H_I) of posts' images"},
	{"train", cmd_train, "train the text encoder and the seven heads (the default model)"},
	{"eval", cmd_eval, "Table-4 metrics of the seven models on a labelled split"},
	{"predict", cmd_predict, "sentiment of posts as CSV: id,label,p_negative,p_neutral,p_positive"},
	{"pack", cmd_pack, "write the shared prepacked weights (model.packed) of a model's encoders"},
	{"cpu", cmd_cpu, "the CPU's SIMD flags and the kernel path in use (MMSA_ISA)"},
	{"calibrate", cmd_calibrate, "activation scales of the int8 ResNet-50 (calibration.json)"},
};

static void
usage(FILE *out)
{
	fprintf(out, "usage: mmsa COMMAND [options]   (mmsa COMMAND --help for details)\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].run != NULL)
			fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
}

int
main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
	{
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].run != NULL && strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "mmsa: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
