/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Progress lines for long work, fed by the library's progress callbacks:
 * on a terminal (stderr) by default, elsewhere only with --progress, never
 * with -q. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mdimg.h"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void mdimg_progress_init(struct mdimg_progress *p, const char *what, int unit, int forced)
{
    memset(p, 0, sizeof(*p));
    p->what = what;
    p->unit = unit;
    p->tty = isatty(STDERR_FILENO);
    p->enabled = mdimg_verbose >= 0 && (forced || p->tty);
    p->t0 = mono_s();
}

static void human(char *buf, size_t n, double v)
{
    if (v >= 1024.0 * 1024 * 1024)
        snprintf(buf, n, "%.2f GiB", v / (1024.0 * 1024 * 1024));
    else
        snprintf(buf, n, "%.1f MiB", v / (1024.0 * 1024));
}

int mdimg_progress_cb(void *userdata, uint64_t done, uint64_t total)
{
    struct mdimg_progress *p = userdata;
    double now = mono_s(), el = now - p->t0;
    char a[32], b[32], rate[48] = "", eta[32] = "";

    if (!p->enabled)
        return 0;
    /* at most 5 lines a second (and the last one) */
    if (done < total && now - p->last < 0.2)
        return 0;
    p->last = now;
    if (p->unit == MDIMG_PROGRESS_STEPS) {
        fprintf(stderr, "%s%s: step %llu of %llu%s", p->tty ? "\r" : "", p->what,
                (unsigned long long)done, (unsigned long long)total, p->tty ? "\033[K" : "\n");
    } else {
        human(a, sizeof(a), (double)done);
        human(b, sizeof(b), (double)total);
        if (el > 0.5) {
            double r = (double)done / el;
            snprintf(rate, sizeof(rate), ", %.1f MiB/s", r / (1024.0 * 1024));
            if (r > 0 && total > done)
                snprintf(eta, sizeof(eta), ", %.0f s left", (double)(total - done) / r);
        }
        fprintf(stderr, "%s%s: %s of %s (%.0f%%)%s%s%s", p->tty ? "\r" : "", p->what, a, b,
                total ? 100.0 * (double)done / (double)total : 100.0, rate, eta,
                p->tty ? "\033[K" : "\n");
    }
    p->printed = 1;
    fflush(stderr);
    return 0;
}

void mdimg_progress_done(struct mdimg_progress *p)
{
    if (p->enabled && p->printed && p->tty)
        fputc('\n', stderr);
}
