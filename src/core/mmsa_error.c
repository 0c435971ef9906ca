/*
 * mmsa_error.c
 *	  Error reporting and cancellation for the numeric core.
 */
#include "mmsa_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static mmsa_interrupt_hook interrupt_hook = NULL;

mmsa_status
mmsa_set_error(mmsa_error *err, mmsa_status status, const char *fmt,...)
{
	if (err != NULL)
	{
		va_list		ap;

		err->status = status;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return status;
}

void
mmsa_clear_error(mmsa_error *err)
{
	if (err != NULL)
	{
		err->status = MMSA_OK;
		err->message[0] = '\0';
	}
}

const char *
mmsa_status_name(mmsa_status status)
{
	switch (status)
	{
		case MMSA_OK:
			return "ok";
		case MMSA_ERR_IO:
			return "I/O error";
		case MMSA_ERR_FORMAT:
			return "format error";
		case MMSA_ERR_INVALID:
			return "invalid input";
		case MMSA_ERR_NOMEM:
			return "out of memory";
		case MMSA_ERR_UNSUPPORTED:
			return "unsupported";
		case MMSA_ERR_LIMIT:
			return "limit exceeded";
		case MMSA_ERR_CANCELED:
			return "canceled";
	}
	return "unknown error";
}

void
mmsa_set_interrupt_hook(mmsa_interrupt_hook hook)
{
	interrupt_hook = hook;
}

int
mmsa_interrupted(void)
{
	return interrupt_hook != NULL && interrupt_hook();
}
