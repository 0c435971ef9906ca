/*
 * mmsa_error.h
 *	  Error reporting for the numeric core.
 *
 * The core never prints, exits or longjmps: every function that can fail
 * takes an mmsa_error *, fills it and returns a non-zero status.  Callers
 * (the PostgreSQL glue, the command-line tool, the unit tests) turn the
 * status into an ERROR with a SQLSTATE, a message on stderr, or a failed test.
 */
#ifndef MMSA_ERROR_H
#define MMSA_ERROR_H

typedef enum mmsa_status
{
	MMSA_OK = 0,
	MMSA_ERR_IO,				/* file missing or unreadable */
	MMSA_ERR_FORMAT,			/* file or data malformed, corrupt or truncated */
	MMSA_ERR_INVALID,			/* bad argument or bad input value */
	MMSA_ERR_NOMEM,				/* allocation failed */
	MMSA_ERR_UNSUPPORTED,		/* well-formed but not something we handle */
	MMSA_ERR_LIMIT,				/* input exceeds a configured limit */
	MMSA_ERR_CANCELED			/* the interrupt hook asked us to stop */
} mmsa_status;

typedef struct mmsa_error
{
	mmsa_status status;
	char		message[512];
} mmsa_error;

/* Fills err (if not NULL) and returns status. */
mmsa_status mmsa_set_error(mmsa_error *err, mmsa_status status, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* Clears err (if not NULL). */
void		mmsa_clear_error(mmsa_error *err);

/* Short name of a status, for messages ("I/O error", "format error", ...). */
const char *mmsa_status_name(mmsa_status status);

/*
 * Cooperative cancellation.  Long loops in the core call
 * mmsa_interrupted() between layers; when the embedding application has
 * installed a hook and it returns non-zero, the loop cleans up and returns
 * MMSA_ERR_CANCELED.  The PostgreSQL glue installs a hook that reads
 * InterruptPending, then calls CHECK_FOR_INTERRUPTS() itself.
 */
typedef int (*mmsa_interrupt_hook) (void);
void		mmsa_set_interrupt_hook(mmsa_interrupt_hook hook);
int			mmsa_interrupted(void);

#endif
