/*
 * bench_resnet.h
 *	  `mmsa bench resnet`: times ResNet-50 forward passes (see
 *	  test/bench/bench_resnet.sh).  argv[0] is "resnet".
 */
#ifndef MMSA_BENCH_RESNET_H
#define MMSA_BENCH_RESNET_H

int			bench_resnet(int argc, char **argv);

#endif
