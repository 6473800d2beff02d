/*  evrun-bench-store: throughput of the event store, beside the raw LMDB
    floor measured in the same run.

    Writes synthetic but valid job lifecycles through evr_store_append in
    batches of K events, rebuilds every job from the log (replay with
    apply), verifies, and then does the same puts with plain mdb_put of
    the same encoded bytes (one key per event, same batch size, same sync
    mode) and a plain cursor scan, so the ratios hold on a noisy machine.
    Prints one `name: value` per line.  The store it leaves in DIR/store
    passes `evrun-replay DIR/store --verify`.
*/
#include <getopt.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "evr_rebuild.h"
#include "evr_store.h"
#include "evr_synth.h"

static void
s_usage(FILE *out)
{
    fprintf(out, "usage: evrun-bench-store --dir D [--jobs N] [--steps S] [--output-bytes B]\n"
                 "                         [--batch K] [--nosync]\n"
                 "  --dir D           directory for the stores (created; D/store, D/raw)\n"
                 "  --jobs N          jobs to write (default 2000)\n"
                 "  --steps S         steps per job (default 4)\n"
                 "  --output-bytes B  output bytes per step, in 4 KiB chunks (default 8192)\n"
                 "  --batch K         events per append transaction (default 256)\n"
                 "  --nosync          no fsync per commit (default: sync)\n");
}

static double
s_secs(uint64_t from)
{
    return (double) (evr_mono_ns() - from) / 1e9;
}

static int
s_die(const char *what, const char *msg)
{
    fprintf(stderr, "evrun-bench-store: %s: %s\n", what, msg);
    return 1;
}

/*  The raw floor: the same encoded events, one mdb_put each. */
static int
s_raw(const char *dir, uint8_t **bufs, size_t *lens, size_t n, size_t batch, bool nosync,
      double *put_s, double *scan_s)
{
    mkdir(dir, 0700);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    mdb_env_set_mapsize(env, 64ull << 30);
    if (!rc)
        rc = mdb_env_open(env, dir, MDB_NOTLS | (nosync ? MDB_NOSYNC : 0), 0600);
    if (rc)
        return s_die("raw mdb_env_open", mdb_strerror(rc));
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, NULL, 0, &dbi);
    mdb_txn_commit(txn);
    uint64_t t0 = evr_mono_ns();
    for (size_t i = 0; i < n; i += batch) {
        if ((rc = mdb_txn_begin(env, NULL, 0, &txn)))
            return s_die("raw mdb_txn_begin", mdb_strerror(rc));
        for (size_t j = i; j < i + batch && j < n; j++) {
            uint8_t key[8];
            uint64_t seq = j + 1;
            for (int b = 7; b >= 0; b--, seq >>= 8)
                key[b] = (uint8_t) seq;
            MDB_val k = { 8, key }, v = { lens[j], bufs[j] };
            if ((rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND)))
                return s_die("raw mdb_put", mdb_strerror(rc));
        }
        if ((rc = mdb_txn_commit(txn)))
            return s_die("raw mdb_txn_commit", mdb_strerror(rc));
    }
    *put_s = s_secs(t0);
    t0 = evr_mono_ns();
    MDB_cursor *cur;
    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    mdb_cursor_open(txn, dbi, &cur);
    MDB_val k, v;
    size_t seen = 0, sum = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        sum += ((const uint8_t *) v.mv_data)[0];   /* touch the value */
        seen++;
    }
    *scan_s = s_secs(t0);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    if (seen != n)
        return s_die("raw scan", "count differs");
    return sum == 0 ? 1 : 0;   /* keeps the touch from being optimized away */
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' }, { "jobs", required_argument, NULL, 'j' },
        { "steps", required_argument, NULL, 's' },
        { "output-bytes", required_argument, NULL, 'b' },
        { "batch", required_argument, NULL, 'k' }, { "nosync", no_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL;
    long jobs = 2000, steps = 4, bytes = 8192, batch = 256;
    bool nosync = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'j': jobs = atol(optarg); break;
        case 's': steps = atol(optarg); break;
        case 'b': bytes = atol(optarg); break;
        case 'k': batch = atol(optarg); break;
        case 'n': nosync = true; break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (!dir || jobs < 1 || jobs > 99999999 || steps < 1 || steps > 256 || bytes < 0 || batch < 1
        || batch > EVR_STORE_MAX_BATCH) {
        s_usage(stderr);
        return 2;
    }
    mkdir(dir, 0700);
    char *store_dir = evr_asprintf("%s/store", dir), *raw_dir = evr_asprintf("%s/raw", dir);
    char *cmd = evr_asprintf("rm -rf '%s' '%s'", store_dir, raw_dir);
    if (system(cmd) != 0)
        return s_die("rm", cmd);
    free(cmd);

    /* Generate every event up front: the timing covers the store only. */
    size_t total = 0, cap = 0;
    evr_event_t **all = NULL;
    for (long j = 0; j < jobs; j++) {
        char id[48];
        snprintf(id, sizeof id, "01JQ7ZK3M8X2V9T4B6%08u", (unsigned) (j + 1) % 100000000u);
        size_t n;
        evr_event_t **evs = evr_synth_job(id, (uint32_t) steps, (uint32_t) bytes, 4096, &n);
        if (total + n > cap) {
            cap = (total + n) * 2;
            all = evr_realloc(all, cap * sizeof *all);
        }
        memcpy(all + total, evs, n * sizeof *evs);
        total += n;
        free(evs);
    }

    evr_store_t *st;
    evr_err_t err;
    if (evr_store_open(store_dir, nosync ? EVR_STORE_NOSYNC : EVR_STORE_SYNC, &st, &err))
        return s_die("open", err.msg);
    uint64_t t0 = evr_mono_ns();
    for (size_t i = 0; i < total; i += (size_t) batch) {
        size_t n = total - i < (size_t) batch ? total - i : (size_t) batch;
        if (evr_store_append(st, all + i, n, &err))
            return s_die("append", err.msg);
    }
    double append_s = s_secs(t0);

    /* the same events, encoded as the store wrote them, for the floor */
    uint8_t **bufs = evr_calloc(total, sizeof *bufs);
    size_t *lens = evr_calloc(total, sizeof *lens), encoded = 0;
    for (size_t i = 0; i < total; i++) {
        evr_event_encode(all[i], &bufs[i], &lens[i]);
        encoded += lens[i];
        evr_event_destroy(&all[i]);
    }
    free(all);

    t0 = evr_mono_ns();
    evr_rebuild_t *rb;
    if (evr_rebuild_new(st, 0, NULL, NULL, &rb, &err))
        return s_die("rebuild", err.msg);
    double replay_s = s_secs(t0);
    if (evr_rebuild_count(rb) != (size_t) jobs || evr_rebuild_illegal(rb))
        return s_die("rebuild", "wrong job count or illegal events");
    evr_rebuild_destroy(&rb);

    t0 = evr_mono_ns();
    evr_rebuild_verify_t v;
    if (evr_rebuild_verify(st, NULL, NULL, &v, &err))
        return s_die("verify", err.msg);
    double verify_s = s_secs(t0);
    if (v.differences)
        return s_die("verify", "differences found");
    evr_store_destroy(&st);

    double put_s = 0, scan_s = 0;
    int rc = s_raw(raw_dir, bufs, lens, total, (size_t) batch, nosync, &put_s, &scan_s);
    for (size_t i = 0; i < total; i++)
        free(bufs[i]);
    free(bufs);
    free(lens);
    if (rc)
        return rc;

    printf("events: %zu\n", total);
    printf("event_bytes_avg: %.0f\n", (double) encoded / (double) total);
    printf("sync: %s\n", nosync ? "nosync" : "sync");
    printf("batch: %ld\n", batch);
    printf("append_events_per_s: %.0f\n", (double) total / append_s);
    printf("append_mb_per_s: %.1f\n", (double) encoded / append_s / 1e6);
    printf("replay_events_per_s: %.0f\n", (double) total / replay_s);
    printf("verify_s: %.3f\n", verify_s);
    printf("raw_put_events_per_s: %.0f\n", (double) total / put_s);
    printf("raw_scan_events_per_s: %.0f\n", (double) total / scan_s);
    printf("append_vs_raw_put: %.2f\n", put_s / append_s);
    free(store_dir);
    free(raw_dir);
    return 0;
}
