/*
 * bench_resnet_main.c
 *	  Stand-alone driver for bench_resnet (src/cli/bench_resnet.c), used by
 *	  test/bench/bench_resnet.sh when `mmsa bench resnet` is not dispatched.
 */
#include "bench_resnet.h"

int
main(int argc, char **argv)
{
	return bench_resnet(argc, argv);
}
