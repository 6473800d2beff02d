/*  evr_hook_pg.c: the record of a running hook's process group, and the
    sweep of those a killed runner left (evr_hook_pg.h).

    A record is one line, "PGID START SID BOOT": the group's id, its
    leader's start time in clock ticks since boot (/proc/PID/stat field
    22), the session and /proc/sys/kernel/random/boot_id ("-" where there
    is none).  Telling the group from a later one with the same id: while
    any process of a group lives, its id is taken (no new process gets
    that pid, so no new group that id).  So when a process PGID lives
    with the recorded start time, the group is the hook's; when one lives
    with another start time, the hook's group had ended before it; when
    none lives, the processes of group PGID in the recorded session
    started no earlier than the recorded leader are the hook's.
*/
#define _GNU_SOURCE
#include "evr_hook_pg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    long long pgrp, sid;
    unsigned long long start;
    char state;
} s_stat_t;

/*  The fields of /proc/PID/stat this needs; false when pid is no more. */
static bool
s_stat(long long pid, s_stat_t *st)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%lld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');   /* the command's name may hold ") " */
    if (!p)
        return false;
    /* from field 3: state ppid pgrp session tty_nr tpgid flags minflt
       cminflt majflt cmajflt utime stime cutime cstime priority nice
       num_threads itrealvalue starttime */
    long long ppid;
    int k = sscanf(p + 1, " %c %lld %lld %lld %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
                   "%*s %*s %*s %llu", &st->state, &ppid, &st->pgrp, &st->sid, &st->start);
    return k == 5;
}

static void
s_boot(char *out, size_t size)
{
    snprintf(out, size, "-");
    FILE *fp = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (!fp)
        return;
    char line[64];
    if (fgets(line, sizeof line, fp) && strlen(line) > 1) {
        line[strcspn(line, "\n ")] = '\0';
        snprintf(out, size, "%s", line);
    }
    fclose(fp);
}

evr_rc_t
evr_hook_pg_keep(const char *dir, pid_t pgid, evr_err_t *err)
{
    s_stat_t st;
    if (!s_stat(pgid, &st))
        return evr_err_set(err, EVR_ERR_IO, "reading /proc/%d/stat (the hook's start time): "
                           "%s", (int) pgid, strerror(errno));
    char boot[64];
    s_boot(boot, sizeof boot);
    char line[160];
    int len = snprintf(line, sizeof line, "%d %llu %lld %s\n", (int) pgid, st.start, st.sid,
                       boot);
    mkdir(dir, 0700);
    char *path = evr_asprintf("%s/%d.pg", dir, (int) pgid);
    evr_rc_t rc = EVR_OK;
    errno = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, line, (size_t) len) != len)
        rc = evr_err_write(err, path, errno ? errno : EIO);
    if (fd >= 0)
        close(fd);
    if (rc)
        unlink(path);
    free(path);
    return rc;
}

void
evr_hook_pg_drop(const char *dir, pid_t pgid)
{
    char *path = evr_asprintf("%s/%d.pg", dir, (int) pgid);
    unlink(path);
    free(path);
}

/*  The processes of group pgid not ended (zombies not counted) and, when
    sid is not 0, of that session started at or after start. */
static size_t s_members(long long pgid, long long sid, unsigned long long start);

static size_t
s_members(long long pgid, long long sid, unsigned long long start)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long long pid = strtoll(de->d_name, &end, 10);
        s_stat_t st;
        if (*end || pid <= 0 || !s_stat(pid, &st) || st.pgrp != pgid || st.state == 'Z'
            || st.state == 'X')
            continue;
        if (!sid || (st.sid == sid && st.start >= start))
            n++;
    }
    closedir(d);
    return n;
}

bool
evr_hook_pg_ours(long long pgid, unsigned long long lo, unsigned long long hi, long long sid)
{
    s_stat_t st;
    /* its leader alive (moved out of the group or not; a zombie is gone:
       its group is what lives of it) */
    if (s_stat(pgid, &st) && st.state != 'Z' && st.state != 'X')
        return st.start >= lo && st.start <= hi;
    return s_members(pgid, sid, lo) > 0;
}

/*  Whether the record's group is alive and the hook's (the story atop). */
static bool
s_ours(long long pgid, unsigned long long start, long long sid, const char *boot)
{
    char now[64];
    s_boot(now, sizeof now);
    if (strcmp(boot, "-") && strcmp(now, "-") && strcmp(boot, now))
        return false;   /* a boot ago: all gone */
    return evr_hook_pg_ours(pgid, start, start, sid);
}

/*  One record: its group killed if it is the hook's, the file removed
    once the group is gone. */
static void
s_sweep_one(const char *path, uint32_t *killed, evr_err_t *err, bool *failed)
{
    char line[160] = "", boot[64] = "";
    FILE *fp = fopen(path, "re");
    if (fp) {
        if (!fgets(line, sizeof line, fp))
            line[0] = '\0';
        fclose(fp);
    }
    long long pgid = 0, sid = 0;
    unsigned long long start = 0;
    if (sscanf(line, "%lld %llu %lld %63s", &pgid, &start, &sid, boot) == 4 && pgid > 1
        && pgid <= INT_MAX && s_ours(pgid, start, sid, boot)) {   /* never kill(-1, ...) */
        kill((pid_t) -pgid, SIGKILL);
        ++*killed;
        struct timespec ts = { 0, 20 * 1000000L };
        int waited = 0;
        while (s_members(pgid, 0, 0) && waited < EVR_HOOK_PG_WAIT_MS) {
            nanosleep(&ts, NULL);
            waited += 20;
        }
        if (s_members(pgid, 0, 0)) {
            if (!*failed)
                evr_err_set(err, EVR_ERR_IO, "%s: the process group %lld of a hook the "
                            "killed runner ran still runs %d ms after SIGKILL (kept: the next "
                            "start kills it again)", path, pgid, EVR_HOOK_PG_WAIT_MS);
            *failed = true;
            return;
        }
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        if (!*failed)
            evr_err_set(err, EVR_ERR_IO, "removing %s: %s", path, strerror(errno));
        *failed = true;
    }
}

evr_rc_t
evr_hook_pg_sweep(const char *dir, uint32_t *killed, evr_err_t *err)
{
    *killed = 0;
    DIR *d = opendir(dir);
    if (!d)
        return EVR_OK;   /* no hook ran here yet */
    bool failed = false;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 4 || strcmp(de->d_name + n - 3, ".pg"))
            continue;
        char *path = evr_asprintf("%s/%s", dir, de->d_name);
        s_sweep_one(path, killed, err, &failed);
        free(path);
    }
    closedir(d);
    return failed ? EVR_ERR_IO : EVR_OK;
}
