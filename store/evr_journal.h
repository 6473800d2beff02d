/*  evr_journal.h: an append-only journal of records, flushed with one
    fdatasync per batch (the broker's submit journal, broker/evr_queue.c).

    A record is a header (magic "EVJ1", payload length, sequence number,
    CRC-32C of the three) and its payload.  Sequence numbers run on by one
    from record to record, across rewinds: evr_journal_rewind starts
    writing at offset 0 again once every record written so far is durable
    elsewhere (the owner keeps the last such seq there, its checkpoint).
    A reader takes the records from offset 0 while each is whole (its CRC
    matches) and follows the one before (seq + 1); the first that does not
    is the end: a torn tail (a crash in the middle of a write) or an older
    record a rewind did not overwrite, whose seq is at most the
    checkpoint; unless a whole batch of newer records follows it (damage
    inside the file: those are read on, and the gap reported).  A batch counts whole or not at all: its last record is
    marked, and the records after the last marked one are not read.  So a
    batch counts once it and everything before it in the file are
    flushed, and no torn, partly written or stale record is ever read.

    The file is kept at least EVR_JOURNAL_AHEAD bytes long (zeros written
    ahead once, within the process's file size limit), so that a flush
    writes the records' blocks and no file size.
*/
#ifndef EVR_JOURNAL_H_INCLUDED
#define EVR_JOURNAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evr_common.h"

#define EVR_JOURNAL_AHEAD (4u << 20)
#define EVR_JOURNAL_REC_MAX (256u << 20)    /* one record's payload, at most */
#define EVR_JOURNAL_HDR 20

typedef struct evr_journal evr_journal_t;

/*  Opens (creates, mode 0600) the journal at path; nosync: no flush
    (tests and benchmarks).  Writing starts after the records that
    evr_journal_replay finds; call it first. */
evr_rc_t evr_journal_open(const char *path, bool nosync, evr_journal_t **out, evr_err_t *err);
void evr_journal_destroy(evr_journal_t **self_p);

/*  Calls fn for each record of the file's whole batches whose seq is
    above after, in order (fn returns non-zero to stop: replay fails with
    EVR_ERR_STORE); *last: the last record's seq, or after when none is
    newer.  A record that is not whole but followed by a whole batch of
    newer records is damage, not a torn tail: the records after it are
    read on (found by their magic and CRC) and gap, when not NULL, is
    called before the first of them with the damaged bytes' offset and
    length and the seqs lost (first..last, above after).  New records
    then get seqs above every one in the file (and above after), and are
    written from offset 0: the caller makes what fn took durable
    elsewhere first.  Errors: EVR_ERR_STORE (a read failed). */
typedef int (evr_journal_fn)(uint64_t seq, const uint8_t *data, size_t len, void *arg);
typedef void (evr_journal_gap_fn)(uint64_t off, uint64_t bytes, uint64_t first, uint64_t last,
                                  void *arg);
evr_rc_t evr_journal_replay(evr_journal_t *self, uint64_t after, evr_journal_fn *fn,
                            evr_journal_gap_fn *gap, void *arg, uint64_t *last, evr_err_t *err);

/*  Room for a record of len bytes at the end of the batch being built:
    the caller fills it before evr_journal_write (the pointer is valid
    until the next call); *seq: the record's sequence number. */
uint8_t *evr_journal_add(evr_journal_t *self, size_t len, uint64_t *seq);
/*  Writes the batch (one write), then evr_journal_sync flushes it
    (fdatasync).  After an error the journal takes no more records (a
    torn record may be left: a reader ignores it).  Errors: EVR_ERR_STORE
    (the text begins "store: "). */
evr_rc_t evr_journal_write(evr_journal_t *self, evr_err_t *err);
evr_rc_t evr_journal_sync(evr_journal_t *self, evr_err_t *err);
/*  Writes from offset 0 again (every record so far is durable elsewhere);
    the sequence numbers run on. */
void evr_journal_rewind(evr_journal_t *self);
/*  Bytes written since the last rewind (what a reader reads at most). */
uint64_t evr_journal_used(const evr_journal_t *self);
/*  The seq of the last record added. */
uint64_t evr_journal_seq(const evr_journal_t *self);

#endif
