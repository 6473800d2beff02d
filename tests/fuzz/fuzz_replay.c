/*  fuzz_replay: a main for the fuzz targets where there is no libFuzzer
    (a compiler other than clang).  Runs LLVMFuzzerTestOneInput once on
    each file named, and on each file of each directory named; arguments
    that start with '-' (libFuzzer's options) are skipped.  A target's
    checks abort on failure, as under libFuzzer; a file that cannot be
    read fails the run.  Each input is passed in an allocation of its
    exact size, so an over-read shows under ASan.
*/
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*  Inputs are seeds: small.  A bigger file is refused. */
#define S_INPUT_MAX (16u << 20)

static int
s_run_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    struct stat sb;
    if (!fp || fstat(fileno(fp), &sb) != 0 || sb.st_size > S_INPUT_MAX) {
        fprintf(stderr, "fuzz_replay: %s: cannot read it (or over %u bytes)\n", path,
                S_INPUT_MAX);
        if (fp)
            fclose(fp);
        return 1;
    }
    size_t n = (size_t) sb.st_size;
    uint8_t *data = malloc(n ? n : 1);
    size_t got = fread(data, 1, n, fp);
    fclose(fp);
    if (got != n) {
        fprintf(stderr, "fuzz_replay: %s: read %zu of %zu bytes\n", path, got, n);
        free(data);
        return 1;
    }
    LLVMFuzzerTestOneInput(data, n);
    free(data);
    return 0;
}

static int
s_run(const char *path, int *inputs)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        ++*inputs;
        return s_run_file(path);
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "fuzz_replay: %s: cannot open the directory\n", path);
        return 1;
    }
    int fails = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        char *full = malloc(len);
        snprintf(full, len, "%s/%s", path, e->d_name);
        fails += s_run(full, inputs);
        free(full);
    }
    closedir(d);
    return fails;
}

int
main(int argc, char **argv)
{
    int fails = 0, inputs = 0;
    for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-')
            fails += s_run(argv[i], &inputs);
    fprintf(stderr, "fuzz_replay: %d inputs run once, %d unreadable\n", inputs, fails);
    return fails || !inputs ? 1 : 0;
}
