/*
 * tap.h
 *	  A minimal Test Anything Protocol emitter for the C unit tests, so that
 *	  `prove` runs them beside the pgTAP suites.
 *
 *	  ok(cond, "name", ...)        one test
 *	  tap_close_within(a, b, n, tol, "name")  max |a-b| <= tol over n floats
 *	  return tap_done();           prints the plan, exit status 0 iff all passed
 *	  tap_prefix = "avx2";         names the kernel path in the tests that follow
 */
#ifndef MMSA_TAP_H
#define MMSA_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

static int	tap_count = 0;
static int	tap_failed = 0;
static const char *tap_prefix = NULL;	/* "[prefix] " before each name */

static int	ok(int cond, const char *fmt,...) __attribute__((format(printf, 2, 3)));
static void diag(const char *fmt,...) __attribute__((format(printf, 1, 2)));

static int
ok(int cond, const char *fmt,...)
{
	va_list		ap;

	tap_count++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_count);
	if (tap_prefix)
		printf("[%s] ", tap_prefix);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

static void
diag(const char *fmt,...)
{
	va_list		ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* Max absolute difference of two float arrays. */
static double
max_abs_diff(const float *a, const float *b, long n)
{
	double		m = 0.0;

	for (long i = 0; i < n; i++)
	{
		double		d = fabs((double) a[i] - (double) b[i]);

		if (d > m || d != d)
			m = (d != d) ? INFINITY : d;
	}
	return m;
}

static int
tap_close_within(const float *a, const float *b, long n, double tol, const char *name)
{
	double		d = max_abs_diff(a, b, n);

	return ok(d <= tol, "%s: max abs diff %.3g <= %.1g", name, d, tol);
}

static int
tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed == 0 && tap_count > 0 ? 0 : 1;
}

#endif
