/*  evr_ship.h: a runner's artifact files shipped to the broker.

    The queue is a directory (STATE/ship) of small files, one per artifact
    file to ship, named so that they sort in the order they were queued.
    The engine queues a step's files (evr_ship_enqueue_unsynced each,
    then one evr_ship_sync, in the child that unpacked them) before it
    records their step.artifact events; the daemon ships the
    queue, oldest first (of the names read from dir at once: see
    evr_ship_pending), one file and one piece at a time over its broker
    connection (schema/PROTOCOL.md "Artifacts"): a piece goes out only
    when the last one is acknowledged, each acknowledgement says how many
    bytes the broker holds, and an entry is removed only when the broker
    holds the whole file (or refuses it for good).  A runner killed
    mid-ship finds the entry on restart and asks the broker where the
    bytes end: nothing is sent twice into the broker's file, nothing
    partial is ever named as the artifact there.
*/
#ifndef EVR_SHIP_H_INCLUDED
#define EVR_SHIP_H_INCLUDED

#include "evr_msg.h"

/*  Queues the file artifacts_dir/JOB/STEP/PATH (file: that path; size
    bytes, its sha256) in dir (made when missing).  The entry records the
    file's identity (device, inode, mtime), so that a copy that replaced
    it since is told apart without reading it.  EVR_ERR_IO naming the
    file. */
evr_rc_t evr_ship_enqueue(const char *dir, const char *file, const char *job, const char *step,
                          const char *path, uint64_t size, const char *sha256, evr_err_t *err);

/*  As evr_ship_enqueue, but the entry is only written, under its
    temporary name (*entry ".tmp"), which the shipper never takes:
    evr_ship_sync then syncs a batch of them and renames each into place.
    Until then a killed runner or a crash of the machine leaves at most
    temporary files, removed at the shipper's next start.  *entry: the
    entry's final path (caller frees; NULL on error). */
evr_rc_t evr_ship_enqueue_unsynced(const char *dir, const char *file, const char *job,
                                   const char *step, const char *path, uint64_t size,
                                   const char *sha256, char **entry, evr_err_t *err);

/*  Makes the n entries (final paths from evr_ship_enqueue_unsynced; NULL
    ones skipped) durable and visible to the shipper: each one's data
    synced (fdatasync), then each renamed into place, then dir synced
    (their names).  Not syncfs(2): that would wait for everything dirty on the
    filesystem (the artifact files just unpacked, others' writes), and
    only the entries need to be on disk.  Nothing is shipped before its
    entry is renamed, so a shipper taking entries meanwhile cannot race
    the sync.  EVR_ERR_IO naming the entry or dir; entries renamed before
    the failure stay (the caller removes them: evr_ship_unqueue). */
evr_rc_t evr_ship_sync(const char *dir, char *const *entries, size_t n, evr_err_t *err);

/*  Removes an entry written by evr_ship_enqueue_unsynced, renamed into
    place or not. */
void evr_ship_unqueue(const char *entry);

typedef struct evr_ship evr_ship_t;

/*  A shipper of the queue in dir, the files under artifacts_dir; made
    before anything is queued (the temporary files of entries a killed
    runner was writing are removed). */
evr_ship_t *evr_ship_new(const char *dir, const char *artifacts_dir);
void evr_ship_destroy(evr_ship_t **self_p);

/*  The next artifact_chunk to send at now (mono ns) into msg (zeroed by
    the caller, cleared with evr_msg_clear); false when there is none now:
    the queue is empty (looked at again every 200 ms) or a piece awaits
    its acknowledgement (asked again after 10 s without one). */
bool evr_ship_next(evr_ship_t *self, uint64_t now, evr_msg_t *msg);

/*  An artifact_ack from the broker; one about another file is ignored,
    and one saying the broker holds more than the file's size is taken as
    no answer (the file is asked about again after the probe's wait). */
void evr_ship_on_ack(evr_ship_t *self, const evr_msg_t *ack);

/*  The connection is new (welcome): the file under way is asked about
    again. */
void evr_ship_reset(evr_ship_t *self);

/*  Entries in the queue, the one under way included.  The shipper reads
    dir once for the names of its oldest entries (4096 at most), ships
    them in order, and reads dir again only when it has taken them all:
    an entry queued meanwhile ships then, after those.  Without look the
    count is that of the last read less the entries shipped or dropped
    since, dir read again when no name held is left (so 0 is what a read
    found, and entries queued since the last read are not counted); with
    look, dir is read again first (the names held taken afresh). */
uint32_t evr_ship_pending(evr_ship_t *self, bool look);

#endif
