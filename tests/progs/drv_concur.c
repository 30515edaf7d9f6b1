/*
 * drv_concur DIR MS -- count how many of us run at once: under an flock on
 * DIR/lock, bump DIR/cur and raise DIR/max to it; sleep MS; then drop
 * DIR/cur. A test reads DIR/max afterwards.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

static long
read_num(const char *dir, const char *name)
{
    char path[512];
    FILE *f;
    long v = 0;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "r");
    if (f != NULL) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

static void
write_num(const char *dir, const char *name, long v)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "%ld\n", v);
        fclose(f);
    }
}

static void
bump(const char *dir, long delta)
{
    char path[512];
    int fd;
    long cur;

    snprintf(path, sizeof path, "%s/lock", dir);
    fd = open(path, O_CREAT | O_RDWR, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0)
        exit(3);
    cur = read_num(dir, "cur") + delta;
    write_num(dir, "cur", cur);
    if (cur > read_num(dir, "max"))
        write_num(dir, "max", cur);
    flock(fd, LOCK_UN);
    close(fd);
}

int
main(int argc, char **argv)
{
    int i;

    if (argc < 3)
        return 2;
    for (i = 1; i + 1 < argc; i++)
        bump(argv[i], 1);
    usleep((useconds_t)atol(argv[argc - 1]) * 1000);
    for (i = 1; i + 1 < argc; i++)
        bump(argv[i], -1);
    return 0;
}
