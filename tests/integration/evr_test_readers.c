/*  evr-test-readers DIR N: takes N slots of the reader table of the LMDB
    environment DIR (N read transactions of one process, MDB_NOTLS), says
    "held N" on stdout and kills itself (SIGKILL), leaving the slots
    taken, as any reader killed inside a read transaction does (test
    only): test_store_faults.sh's "readers" case.  It dies at once, so
    that the slots are a live process's for as short a time as can be.
*/
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: evr-test-readers DIR N\n");
        return 2;
    }
    int n = atoi(argv[2]);
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (!rc)
        rc = mdb_env_set_maxreaders(env, 126);
    if (!rc)
        rc = mdb_env_open(env, argv[1], MDB_RDONLY | MDB_NOTLS, 0600);
    if (rc) {
        fprintf(stderr, "evr-test-readers: %s: %s\n", argv[1], mdb_strerror(rc));
        return 1;
    }
    int held = 0;
    for (; held < n; held++) {
        MDB_txn *txn;
        if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))) {
            fprintf(stderr, "evr-test-readers: read %d: %s\n", held + 1, mdb_strerror(rc));
            break;
        }
    }
    printf("held %d\n", held);
    fflush(stdout);
    raise(SIGKILL);
    return 1;
}
