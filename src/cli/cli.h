/*
 * cli.h
 *	  Subcommands of the `mmsa` tool.  Each takes argv with argv[0] the
 *	  subcommand's name, and returns the process exit status (0 ok, 1 error,
 *	  2 usage).
 */
#ifndef MMSA_CLI_H
#define MMSA_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "mmsa_error.h"

/* Image files larger than this are refused by the subcommands. */
#define CLI_MAX_IMAGE_FILE_BYTES ((size_t) 512 << 20)

mmsa_status cli_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len,
						  mmsa_error *err);
double		cli_now_ms(void);
void		cli_format_duration(char *buf, size_t size, double seconds);

/*
 * Declared weak while the subcommands are being written, so the tool links
 * with whichever exist; main() skips a NULL entry.
 */
#define MMSA_CMD(name) int name(int argc, char **argv) __attribute__((weak))

MMSA_CMD(cmd_tokenize);
MMSA_CMD(cmd_embed);
MMSA_CMD(cmd_bench);
MMSA_CMD(cmd_decode);
MMSA_CMD(cmd_classify);
MMSA_CMD(cmd_convert_tfjs);
MMSA_CMD(cmd_features);
MMSA_CMD(cmd_train);
MMSA_CMD(cmd_eval);
MMSA_CMD(cmd_predict);
MMSA_CMD(cmd_pack);
MMSA_CMD(cmd_cpu);
MMSA_CMD(cmd_calibrate);

#endif
