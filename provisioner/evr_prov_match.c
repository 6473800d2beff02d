/*  evr_prov_match.c: which provider starts a runner for a waiting job,
    the start rate's token bucket, and the pause after failed starts
    (evr_prov.h).  No I/O: the caller passes the time.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_prov.h"

bool
evr_prov_subset(const evr_strlist_t *need, const evr_strlist_t *have)
{
    for (uint32_t i = 0; i < need->n; i++) {
        bool found = false;
        for (uint32_t j = 0; j < have->n && !found; j++)
            found = !strcmp(need->v[i], have->v[j]);
        if (!found)
            return false;
    }
    return true;
}

/*  The first label of need that have lacks. */
static const char *
s_lacks(const evr_strlist_t *need, const evr_strlist_t *have)
{
    for (uint32_t i = 0; i < need->n; i++) {
        evr_strlist_t one = { &need->v[i], 1 };
        if (!evr_prov_subset(&one, have))
            return need->v[i];
    }
    return NULL;
}

/*  Appends a line to why (size n), cut when it is full. */
static void __attribute__((format(printf, 3, 4)))
s_say(char *why, size_t n, const char *fmt, ...)
{
    size_t at = strlen(why);
    if (at + 1 >= n)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    snprintf(why + at, n - at, "%s%s", at ? "\n" : "", line);
}

int
evr_prov_match(const evr_prov_config_t *cfg, const evr_strlist_t *labels, uint32_t total,
               char *why, size_t n)
{
    if (n)
        why[0] = '\0';
    int found = -1;
    bool room_only = false;     /* a provider matched but max_runners stopped it */
    for (uint32_t i = 0; i < cfg->nproviders && found < 0; i++) {
        const evr_prov_provider_t *p = &cfg->providers[i];
        const char *lack = s_lacks(labels, &p->match);
        if (lack)
            s_say(why, n, "%s: labels lack %s", p->name, lack);
        else if (p->paused)
            s_say(why, n, "%s: paused: %s", p->name, p->paused);
        else if (p->running >= p->max)
            s_say(why, n, "%s: full (max %u)", p->name, p->max);
        else if (total >= cfg->max_runners)
            room_only = true;
        else
            found = (int) i;
    }
    if (found < 0 && room_only)
        s_say(why, n, "max_runners %u reached", cfg->max_runners);
    return found;
}

bool
evr_prov_bucket_take(evr_prov_bucket_t *b, const evr_prov_config_t *cfg, uint64_t now)
{
    if (!b->at) {
        b->tokens = cfg->burst;
        b->at = now;
    }
    if (now > b->at) {
        b->tokens += (double) (now - b->at) / 1e9 * cfg->rate;
        if (b->tokens > cfg->burst)
            b->tokens = cfg->burst;
        b->at = now;
    }
    if (b->tokens < 1)
        return false;
    b->tokens -= 1;
    return true;
}

bool
evr_prov_start_done(evr_prov_provider_t *p, bool ok, const char *why)
{
    if (ok) {
        p->fails = 0;
        return false;
    }
    p->failed++;
    if (++p->fails < EVR_PROV_FAILS_TO_PAUSE || p->paused)
        return false;
    p->paused = evr_asprintf("%u failed starts in a row, the last: %s", p->fails, why);
    evr_text_fit(p->paused, EVR_REASON_MAX);   /* the provider report's reason: 1024 bytes */
    return true;
}

const char *
evr_prov_state(const evr_prov_provider_t *p, char *buf, size_t n)
{
    if (!p->paused)
        return "active";
    snprintf(buf, n, "paused: %s", p->paused);
    return buf;
}
